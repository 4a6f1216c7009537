"""The learner's reports as every worker sees them: the latest one, and the recent metrics over time.

The learner publishes its report (progressive metrics, tripwire, experiment) to the ``metrics`` topic after
each snapshot round; every worker follows that topic from the beginning (:func:`~streams.kafka.follow.follow_topic`),
so ``/metrics``, the dashboard and ``streamscore top`` show the models' health next to the worker's own.
The time of a report is its record's timestamp (when the learner published it), so a worker that starts
later draws the same history.

>>> reports = LearnerReports()
>>> reports.apply_one(b"learner", b'{"examples": 10, "tripwire": {"alert": false}, "models": '
...                   b'{"prod": {"recent": {"logloss": 0.3, "auc": 0.7}}}}', timestamp=5.0)
>>> reports.history[-1]
(5.0, {'examples': 10, 'tripwire_alert': False, 'models': {'prod': {'logloss': 0.3, 'auc': 0.7}}})
>>> reports.apply_one(b"learner", b"not json", timestamp=6.0); reports.rejected
1
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson

from streams.kafka.follow import follow_topic

if TYPE_CHECKING:  # streams.worker.app imports this module to register the feed
    from streams.worker.app import StreamApp

log = logging.getLogger(__name__)

HISTORY = 720
"""Reports kept for the charts: an hour at the default 5 s snapshot cadence, more at slower ones."""


class LearnerReports:
    def __init__(self) -> None:
        self.latest: dict[str, Any] | None = None
        self.history: deque[tuple[float, dict[str, Any]]] = deque(maxlen=HISTORY)
        self.rejected = 0

    def apply_one(self, key: bytes | None, value: bytes, timestamp: float) -> None:
        try:
            report = orjson.loads(value)
            summary = {
                "examples": report.get("examples"),
                "tripwire_alert": report["tripwire"]["alert"],
                "models": {name: {k: m["recent"].get(k) for k in ("logloss", "auc")}
                           for name, m in report["models"].items()},
            }
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            # Not ours to dead-letter (the learner wrote it); say so once per record and keep the last good one.
            self.rejected += 1
            log.warning("ignored a metrics record that is not a learner report: %s", exc)
            return
        self.latest = report
        self.history.append((timestamp, summary))

    def snapshot(self) -> dict[str, Any] | None:
        if self.latest is None:
            return None
        return {"report": self.latest, "history": [[ts, summary] for ts, summary in self.history]}


def register_metrics_feed(stream_app: StreamApp, reports: LearnerReports) -> None:
    """Make every worker of ``stream_app`` follow the learner's reports until it shuts down."""
    settings = stream_app.settings
    stop = asyncio.Event()

    @stream_app.app.task
    async def follow_learner_reports() -> None:
        stop.clear()
        await follow_topic(settings.bootstrap, settings.topic("metrics"),
                           lambda record: reports.apply_one(record.key, record.value or b"", record.timestamp / 1000),
                           stop, stream_app.processor.counters, "metrics_feed_errors")

    @stream_app.app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode's stub wants a positional signal
    async def stop_following_reports(sender: Any, **kwargs: Any) -> None:
        stop.set()
