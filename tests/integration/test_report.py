"""Without a learner to ask, the experiment report comes from the newest record of the metrics topic."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from models.report import experiment_report
from streams.kafka.broker import free_port
from streams.ops.reports import ReportUnavailable, fetch_report_async
from streams.settings import Settings
from tests.fixtures import produce

pytestmark = pytest.mark.integration


def _report(examples: int) -> dict:
    return {"models": {}, "tripwire": {}, "comparisons": [], "examples": examples,
            "experiment": {"A": {"n": examples, "label_rate": 0.1, "logloss": 0.3}}}


async def test_report_falls_back_to_the_newest_metrics_record(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(learner_web_port=free_port())
    with pytest.raises(ReportUnavailable, match="has no report yet; start the learner"):
        await fetch_report_async(settings)

    await produce(settings.bootstrap, settings.topic("metrics"), [
        (b"report", orjson.dumps(_report(100))),
        (b"report", orjson.dumps(_report(200))),
        (b"other", b"not json"),
    ])
    report = await fetch_report_async(settings)
    assert report == _report(200)
    assert experiment_report(report).splitlines()[:3] == [
        "experiment: 200 examples",
        "arm    n  label rate  log loss  95% CI",
        "A    200      0.1000    0.3000  -",
    ]
