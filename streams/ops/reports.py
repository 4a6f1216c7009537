"""The learner's reports, as people and the workers get them: fetched for a command, followed by a worker.

:func:`fetch_report` asks the learner (``/metrics.json``) and, when it does not answer, reads the newest report
from the ``metrics`` topic; ``streamscore experiment report`` formats it (:func:`models.report.experiment_report`).

:class:`LearnerReports` is what every worker keeps of them.

The learner publishes its report (progressive metrics, tripwire, experiment) to the ``metrics`` topic after
each snapshot round; every worker follows that topic from the beginning
(:func:`~streams.kafka.follow.follow_topic`), so ``/metrics``, the dashboard and ``streamscore top`` show the
models' health next to the worker's own. The time of a report is its record's timestamp (when the learner
published it), so a worker that starts later draws the same history.

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
import json
import logging
import urllib.error
import urllib.request
from collections import deque
from typing import Any

import orjson

from streams.kafka.admin import partitions_of
from streams.kafka.clients import AIOKafkaConsumer, TopicPartition
from streams.settings import Settings

__all__ = ["HISTORY", "LearnerReports", "ReportUnavailable", "fetch_report", "fetch_report_async", "newest_report"]

log = logging.getLogger(__name__)

TAIL = 20
"""Records read from the end of each partition of the ``metrics`` topic to find the newest full report."""
LEARNER_HINT = "start the learner (streamscore learner) and let it see some labelled examples"


class ReportUnavailable(RuntimeError):
    """Neither the learner nor the ``metrics`` topic has a report; the message says how to get one."""


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


def _is_report(value: Any) -> bool:
    return isinstance(value, dict) and ("experiment" in value or "models" in value)


def _http_report(url: str, timeout: float) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # our own http:// URL
            value = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return value if _is_report(value) else None


async def newest_report(bootstrap: str, topic: str, *, timeout: float = 5.0) -> dict[str, Any] | None:
    """The newest report (by record timestamp) among the last :data:`TAIL` records of each partition of
    ``topic``, or ``None`` when the topic is missing or holds none. Reads without a consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                request_timeout_ms=int(timeout * 1000))
    try:
        await consumer.start()
        partitions = await partitions_of(consumer, topic)
        if not partitions:
            return None
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > begin[tp]}
        for tp in remaining:
            consumer.seek(tp, max(begin[tp], end[tp] - TAIL))
        best: tuple[int, int, dict[str, Any]] | None = None
        deadline = asyncio.get_running_loop().time() + timeout
        while remaining and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(*remaining, timeout_ms=200)
            for records in batches.values():
                for record in records:
                    try:
                        value = json.loads(record.value or b"")
                    except ValueError:
                        continue
                    if _is_report(value) and (best is None or (record.timestamp, record.offset) > best[:2]):
                        best = (record.timestamp, record.offset, value)
            remaining = {tp for tp in remaining if await consumer.position(tp) < end[tp]}
        return best[2] if best else None
    finally:
        await consumer.stop()


async def fetch_report_async(settings: Settings, *, timeout: float = 5.0) -> dict[str, Any]:
    """The learner's report from ``http://{web_host}:{learner_web_port}/metrics.json``; when the learner does
    not answer, the newest report of the ``metrics`` topic. :class:`ReportUnavailable` if neither has one."""
    url = f"http://{settings.web_host}:{settings.learner_web_port}/metrics.json"
    report = await asyncio.to_thread(_http_report, url, min(timeout, 2.0))
    if report is not None:
        return report
    topic = settings.topic("metrics")
    try:
        report = await newest_report(settings.bootstrap, topic, timeout=timeout)
    except Exception as exc:  # broker down, ...: the one-line error below says what to do
        where = f"the broker at {settings.bootstrap} is not reachable ({type(exc).__name__})"
    else:
        if report is not None:
            return report
        where = f"topic {topic!r} has no report yet"
    raise ReportUnavailable(f"no experiment report: the learner does not answer at {url} and {where}; {LEARNER_HINT}")


def fetch_report(settings: Settings, *, timeout: float = 5.0) -> dict[str, Any]:
    """:func:`fetch_report_async` for synchronous callers (the CLI); not from inside a running event loop."""
    return asyncio.run(fetch_report_async(settings, timeout=timeout))
