"""The tripwire: alert when the production model is no better than the baseline on recent data.

It reads the ``recent`` window of two :class:`~models.metrics.ProgressiveMetrics` reports.

>>> tripwire = Tripwire(margin=0.01, min_count=2)
>>> tripwire.check({"recent": {"n": 500, "logloss": 0.30}}, {"recent": {"n": 500, "logloss": 0.35}})
... # doctest: +NORMALIZE_WHITESPACE
TripwireState(alert=False, reason='logloss 0.3 beats the baseline 0.35 by at least 0.01',
              prod=0.3, baseline=0.35)
>>> tripwire.check({"n": 500, "logloss": 0.345}, {"n": 500, "logloss": 0.35}).alert
True

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["METRICS", "Tripwire", "TripwireState"]

METRICS = ("logloss", "auc")


@dataclass(frozen=True)
class TripwireState:
    alert: bool
    reason: str
    prod: float | None
    """The production model's recent value of the metric (``None`` if undefined)."""
    baseline: float | None
    """The baseline's recent value of the metric (``None`` if undefined)."""


@dataclass(frozen=True)
class Tripwire:
    """Compare the recent ``metric`` of production and baseline.

    - ``logloss`` (lower is better): alert when ``prod > baseline - margin``;
    - ``auc`` (higher is better): alert when ``prod < baseline + margin``.

    So with ``margin > 0`` production must beat the baseline by the margin; a negative margin tolerates
    production being that much worse. No alert while either side has fewer than ``min_count`` recent pairs
    or the metric is undefined (an AUC with one class only): the reason says which.

    >>> Tripwire(metric="auc", min_count=100).check({"n": 99, "auc": 0.5}, {"n": 500, "auc": 0.7}).reason
    'not enough data: prod has 99 recent examples, baseline 500, need 100 each'
    >>> Tripwire(metric="auc", min_count=100).check({"n": 200, "auc": 0.6}, {"n": 500, "auc": 0.7}).reason
    'auc 0.6 is worse than the baseline 0.7 + margin 0.0'
    """

    margin: float = 0.0
    min_count: int = 200
    metric: str = "logloss"

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if not math.isfinite(self.margin):
            raise ValueError(f"margin must be finite, got {self.margin!r}")
        if isinstance(self.min_count, bool) or not isinstance(self.min_count, int) or self.min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {self.min_count!r}")

    def check(self, prod: Mapping[str, Any], baseline: Mapping[str, Any]) -> TripwireState:
        """Check two recent-window reports (or whole reports, whose ``recent`` part is then used)."""
        prod, baseline = _recent(prod), _recent(baseline)
        prod_value, baseline_value = prod.get(self.metric), baseline.get(self.metric)
        prod_n, baseline_n = prod.get("n") or 0, baseline.get("n") or 0
        if prod_n < self.min_count or baseline_n < self.min_count:
            return TripwireState(
                False,
                f"not enough data: prod has {prod_n} recent examples, baseline {baseline_n}, "
                f"need {self.min_count} each",
                prod_value,
                baseline_value,
            )
        if prod_value is None or baseline_value is None:
            which = "prod" if prod_value is None else "baseline"
            return TripwireState(False, f"{self.metric} undefined for {which} (one class only?)",
                                 prod_value, baseline_value)
        m, margin = self.metric, self.margin
        if m == "logloss" and prod_value > baseline_value - margin:
            reason = f"{m} {prod_value} is worse than the baseline {baseline_value} - margin {margin}"
            return TripwireState(True, reason, prod_value, baseline_value)
        if m == "auc" and prod_value < baseline_value + margin:
            reason = f"{m} {prod_value} is worse than the baseline {baseline_value} + margin {margin}"
            return TripwireState(True, reason, prod_value, baseline_value)
        reason = f"{m} {prod_value} beats the baseline {baseline_value} by at least {margin}"
        return TripwireState(False, reason, prod_value, baseline_value)


def _recent(report: Mapping[str, Any]) -> Mapping[str, Any]:
    recent = report.get("recent")
    return recent if isinstance(recent, Mapping) else report
