"""The learning loop, live: a worker and a learner process on the real broker, fed a learnable stream.

Events with clicks go in; examples, signed snapshots and metrics come out; the worker hot-swaps to the new
model versions while it scores; prod ends above 0.5 and above the baseline. An A/A experiment's arms agree;
an A/B experiment serving a deliberately broken model on arm B is flagged by the tripwire and by the
comparison.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from models.snapshots import load_snapshot
from streams.kafka.broker import free_port
from streams.settings import Settings
from streams.tools.simulate import simulate
from tests.fixtures import WorkerProcess, consume, events_payload, produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STREAM, TRUTH = simulate(users=300, events=10000, seed=7)
WARM_UP = 6000
"""Events of the warm-up: a replay of them closes 6,470 examples; live, each partition's clock trails a little."""
WARM_UP_EXAMPLES = 4000
WARM_UP_STEP = 500


def _report(settings: Settings) -> dict[str, Any] | None:
    url = f"http://{settings.web_host}:{settings.learner_web_port}/metrics.json"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except OSError:
        return None


def _settled_report(
    settings: Settings, learner: WorkerProcess, at_least: int, timeout: float = 150.0
) -> dict[str, Any]:
    """The learner's report once it has learned ``at_least`` examples and nothing new came for 5 s."""
    deadline, last, last_change = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        assert learner.alive, learner.log_tail()
        report = _report(settings)
        examples = report["examples"] if report else -1
        if examples != last:
            last, last_change = examples, time.monotonic()
        elif report and examples >= at_least and time.monotonic() - last_change > 5.0:
            return report
        time.sleep(0.5)
    raise AssertionError(f"the learner learned {last} examples, expected {at_least}:\n{learner.log_tail()}")


def _worker_serves(settings: Settings, worker: WorkerProcess, versions: dict[str, int],
                   timeout: float = 60.0) -> None:
    """Wait until the worker has swapped to the snapshot ``versions`` the learner published."""
    url = f"http://{settings.web_host}:{settings.web_port}/dashboard/data.json"
    deadline, serving = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        assert worker.alive, worker.log_tail()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                serving = json.loads(response.read())["models"]
        except OSError:
            pass
        if all(serving.get(name, 0) >= version for name, version in versions.items()):
            return
        time.sleep(0.2)
    raise AssertionError(f"the worker serves {serving}, the learner published {versions}:\n{worker.log_tail()}")


def _serving(settings: Settings) -> dict[str, int]:
    url = f"http://{settings.web_host}:{settings.web_port}/dashboard/data.json"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            models: dict[str, int] = json.loads(response.read())["models"]
            return models
    except OSError:
        return {}


async def _warm_up(settings: Settings, worker: WorkerProcess, events: list[dict[str, Any]]) -> None:
    """Feed the warm-up in steps, each once the worker serves a newer prod than before the step before.

    In one go, the worker scores the whole warm-up before the learner's first snapshot arrives (it takes 6,000
    events in about 2 s), and the arms' comparisons, which count every example, are then mostly of untrained
    models: how much depends on how fast the worker runs against the learner. Paced, the loop trains as it goes.
    """
    for start in range(0, len(events), WARM_UP_STEP):
        before = _serving(settings).get("prod", 0)
        await produce(settings.bootstrap, settings.topic("events"), events_payload(events[start:start + WARM_UP_STEP]))
        deadline = time.monotonic() + 60.0
        while _serving(settings).get("prod", 0) <= before and time.monotonic() < deadline:
            assert worker.alive, worker.log_tail()
            await asyncio.sleep(0.2)


async def _run(settings: Settings, tmp_path: Path) -> tuple[dict[str, Any], WorkerProcess]:
    """Warm the loop up on the first part of the stream, then judge it on the rest.

    The recent windows must hold scores of a trained model: in one go, how many requests the worker serves
    before the first snapshots arrive depends on how fast it runs against the learner, and a per-arm window
    (half the traffic, so twice the time span) then reaches back into the untrained start.
    """
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    learner = WorkerProcess(settings, tmp_path / "learner.log", command="learner")
    await _warm_up(settings, worker, STREAM[:WARM_UP])
    warm = await asyncio.to_thread(_settled_report, settings, learner, WARM_UP_EXAMPLES)
    await asyncio.to_thread(_worker_serves, settings, worker, warm["snapshots"])
    await produce(settings.bootstrap, settings.topic("events"), events_payload(STREAM[WARM_UP:]))
    report = await asyncio.to_thread(_settled_report, settings, learner, 10000)
    assert learner.stop() == 0, learner.log_tail()
    return report, worker


@pytest.fixture
def loop_settings(settings_factory: Callable[..., Settings]) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return settings_factory(partitions=2, snapshot_every=200, snapshot_seconds=2.0, metrics_window=1500,
                                learner_web_port=free_port(), **overrides)
    return make


async def test_prod_learns_live_and_the_a_a_experiment_is_not_flagged(
    loop_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = loop_settings(arms="A:prod:0.5,B:prod:0.5", item_vectors=True)
    report, worker = await _run(settings, tmp_path)
    try:
        prod, baseline = report["models"]["prod"]["cumulative"], report["models"]["baseline"]["cumulative"]
        assert prod["auc"] > baseline["auc"], (prod, baseline)
        # The cumulative figure counts every request served before the first snapshots arrived, and how many
        # those are depends on how fast the worker runs against the learner (on Kafka 2.5x faster than on
        # noida): the recent window judges the model the loop trained, whatever the speeds.
        prod_recent, baseline_recent = report["models"]["prod"]["recent"], report["models"]["baseline"]["recent"]
        assert prod_recent["auc"] > 0.6 and prod_recent["auc"] > baseline_recent["auc"] + 0.02, (prod_recent,
                                                                                                 baseline_recent)
        assert report["models"]["prod"]["recent"]["logloss"] < report["models"]["baseline"]["recent"]["logloss"]
        assert report["tripwire"]["alert"] is False, report["tripwire"]
        # Two arms serving the same model are nowhere near a broken arm's distance (the A/B test below: its
        # interval starts above 0.5 log loss). Not "the screen does not fire": on one fixed split of 300 users
        # that is a draw with a 5-10 % false-alarm rate (tests/unit/test_significance.py measures it over 60
        # splits), and live, which model versions served which arm's requests depends on timing (seen: estimates
        # from -0.17 to +0.04, one interval just excluding 0).
        [comparison] = report["comparisons"]
        assert abs(comparison["logloss"]["estimate"]) < 0.5, comparison
        assert comparison["logloss"]["low"] < 0.5 and comparison["logloss"]["high"] > -0.5, comparison
        assert report["snapshots"]["prod"] >= 10

        # Signed snapshots on the topic; the worker swapped to them while scoring.
        snapshots = await consume(settings.bootstrap, settings.topic("model-snapshots"), expect=1, idle=2.0)
        key = settings.snapshot_key.encode()
        versions = {load_snapshot(r.value, key=key).version for r in snapshots if r.key == b"prod"}
        assert max(versions) == report["snapshots"]["prod"]
        scores = await consume(settings.bootstrap, settings.topic("scores"), expect=1, idle=2.0)
        served_versions = [r.json()["model_version"] for r in scores]
        assert served_versions[0] == 0 and max(served_versions) >= 5
        metrics = await consume(settings.bootstrap, settings.topic("metrics"), expect=1, idle=1.0)
        assert metrics[-1].json()["examples"] > 0

        # The learner's item vectors reached the worker, and each request used one trained before it.
        logged = [r.json() for r in await consume(settings.bootstrap, settings.topic("feature-log"), expect=1,
                                                  idle=2.0)]
        used = [r["item_vectors"] for r in logged]
        assert used[0] == 0 and len(set(used)) >= 3, sorted(set(used))
        assert all(v <= r["ts"] for v, r in zip(used, logged, strict=True))
        assert any("xvec_sim" in f["x"] for r in logged for f in r["features"])
    finally:
        worker.stop()


async def test_a_b_with_a_broken_model_on_arm_b_trips_the_wire_and_the_comparison(
    loop_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = loop_settings(arms="A:prod:0.5,B:inverted:0.5", models="prod,baseline,inverted")
    report, worker = await _run(settings, tmp_path)
    worker.stop()
    tripwire = report["tripwire"]
    assert tripwire["alert"] is True, tripwire
    assert tripwire["arms"]["B"]["alert"] is True and tripwire["arms"]["A"]["alert"] is False, json.dumps(tripwire)
    [comparison] = report["comparisons"]
    assert comparison["significant"] is True and comparison["logloss"]["low"] > 0.5, comparison
