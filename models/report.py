"""The experiment report for people: the learner's metrics report as a table.

:func:`experiment_report` formats the report the learner serves at ``/metrics.json`` (and publishes to the
``metrics`` topic): per arm the examples, the label rate and the mean log loss with its 95 % interval, then
each comparison of two arms (differences are ``b - a``, as in :mod:`models.significance`). Fetching that
report (from the learner over HTTP, or from the topic) is I/O and lives in ``streams/ops/reports.py``.

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

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["experiment_report", "logloss_interval"]

CONFIDENCE = 0.95


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
