"""The experiment report for people: the learner's metrics report as a table, and where to get that report.

:func:`experiment_report` formats the report the learner serves at ``/metrics.json`` (and publishes to the
``metrics`` topic): per arm the examples, the label rate and the mean log loss with its 95 % interval, then
each comparison of two arms (differences are ``b - a``, as in :mod:`models.significance`).

>>> report = {
...     "examples": 2000,
...     "experiment": {
...         "A": {"n": 1000, "label_rate": 0.1, "logloss": 0.32, "logloss_low": 0.289, "logloss_high": 0.351},
...         "B": {"n": 1000, "label_rate": 0.12, "logloss": 0.35, "logloss_low": 0.319, "logloss_high": 0.381},
...     },
...     "comparisons": [{"a": "A", "b": "B", "significant": False,
...                      "label_rate": {"estimate": 0.02, "low": -0.0075, "high": 0.0475},
...                      "logloss": {"estimate": 0.03, "low": -0.0139, "high": 0.0739}}],
... }
>>> print(experiment_report(report))
experiment: 2000 examples
arm     n  label rate  log loss  95% CI
A    1000      0.1000    0.3200  [0.2890, 0.3510]
B    1000      0.1200    0.3500  [0.3190, 0.3810]
<BLANKLINE>
a vs b  label rate b - a            log loss b - a              significant
A vs B  +0.0200 [-0.0075, +0.0475]  +0.0300 [-0.0139, +0.0739]  no

The per-arm interval is the learner's (``logloss_low``, ``logloss_high``), computed over buckets of users by
:mod:`models.significance`: an interval over examples would be too narrow, as one user's examples correlate.
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.admin import partitions_of
from streams.settings import Settings

__all__ = [
    "ReportUnavailable",
    "experiment_report",
    "fetch_report",
    "fetch_report_async",
    "logloss_interval",
    "newest_report",
]

CONFIDENCE = 0.95
TAIL = 20
"""Records read from the end of each partition of the ``metrics`` topic to find the newest full report."""
LEARNER_HINT = "start the learner (streamscore learner) and let it see some labelled examples"


class ReportUnavailable(RuntimeError):
    """Neither the learner nor the ``metrics`` topic has a report; the message says how to get one."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def logloss_interval(arm: Mapping[str, Any]) -> tuple[float, float] | None:
    """The learner's interval of an arm's mean log loss, or ``None`` when it has none yet (too few users).

    >>> logloss_interval({"n": 5, "logloss": 1.0, "logloss_low": 0.8, "logloss_high": 1.2})
    (0.8, 1.2)
    >>> logloss_interval({"n": 1, "logloss": 1.0, "logloss_low": None, "logloss_high": None}) is None
    True
    """
    low, high = _number(arm.get("logloss_low")), _number(arm.get("logloss_high"))
    return (low, high) if low is not None and high is not None else None


def _fixed(value: Any, signed: bool = False) -> str:
    number = _number(value)
    if number is None:
        return "-"
    return f"{number:+.4f}" if signed else f"{number:.4f}"


def _difference(diff: Any) -> str:
    if not isinstance(diff, Mapping):
        return "-"
    return f"{_fixed(diff.get('estimate'), True)} [{_fixed(diff.get('low'), True)}, {_fixed(diff.get('high'), True)}]"


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    def cell(i: int, text: str) -> str:
        return text.rjust(widths[i]) if i in right else text.ljust(widths[i])

    return ["  ".join(cell(i, text) for i, text in enumerate(row)).rstrip() for row in rows]


def experiment_report(metrics_json: Mapping[str, Any]) -> str:
    """The learner's metrics report (``/metrics.json``) as a table for people; see the module's example.

    Missing or undefined values print as ``-``; a report with no experiment yet says so rather than failing.
    """
    examples = metrics_json.get("examples")
    lines = [f"experiment: {examples if examples is not None else '?'} examples"]
    arms = metrics_json.get("experiment") or {}
    if not isinstance(arms, Mapping) or not arms:
        lines.append("no arm has labelled examples yet")
    else:
        rows = [["arm", "n", "label rate", "log loss", f"{round(CONFIDENCE * 100)}% CI"]]
        for name, arm in arms.items():
            arm = arm if isinstance(arm, Mapping) else {}
            interval = logloss_interval(arm)
            ci = f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "-"
            n = arm.get("n")
            rows.append([str(name), str(n) if n is not None else "-", _fixed(arm.get("label_rate")),
                         _fixed(arm.get("logloss")), ci])
        lines.extend(_table(rows, right={1, 2, 3}))
    comparisons = metrics_json.get("comparisons") or []
    if comparisons:
        rows = [["a vs b", "label rate b - a", "log loss b - a", "significant"]]
        for comparison in comparisons:
            significant = comparison.get("significant")
            rows.append([f"{comparison.get('a', '?')} vs {comparison.get('b', '?')}",
                         _difference(comparison.get("label_rate")), _difference(comparison.get("logloss")),
                         "-" if significant is None else ("yes" if significant else "no")])
        lines.append("")
        lines.extend(_table(rows, right=set()))
    tripwire = metrics_json.get("tripwire")
    if isinstance(tripwire, Mapping) and "alert" in tripwire:
        lines.append("")
        lines.append(f"tripwire: {'ALERT' if tripwire['alert'] else 'ok'}"
                     + (f" ({tripwire['reason']})" if tripwire.get("reason") else ""))
    return "\n".join(lines)


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
