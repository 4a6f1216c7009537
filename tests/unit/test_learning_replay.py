"""On a stream with a known click model, prod learns its way close to the oracle; the baseline does not.

The replay runs the worker's and the learner's code in event order (snapshots every 500 examples, served
through the same signed-snapshot feed as live), and the metrics are progressive: each example is judged by
the score served *before* it was learned, as in production.
"""

from __future__ import annotations

import pytest

from streams.replay.driver import ReplayDriver
from streams.settings import Settings
from streams.tools.simulate import simulate

pytestmark = pytest.mark.slow


def test_prod_gets_close_to_the_oracle_and_beats_the_baseline() -> None:
    stream, truth = simulate(users=500, events=20000, seed=1)
    driver = ReplayDriver(Settings(), learn=True)
    driver.pipe_all(stream)
    driver.finish()
    report = driver.report()
    prod, baseline = report["models"]["prod"]["recent"], report["models"]["baseline"]["recent"]
    oracle = truth["oracle"]
    assert prod["n"] == baseline["n"] == 1000
    assert prod["auc"] > oracle["auc"] - 0.08, (prod, oracle)  # close to the best any model can do
    assert prod["auc"] > baseline["auc"] + 0.1
    assert prod["logloss"] < baseline["logloss"]
    assert report["tripwire"]["alert"] is False
    assert 0.7 < prod["calibration"] < 1.4  # the served scores are probabilities, not just a ranking
    assert report["snapshots"]["prod"] >= report["examples"] // 500
