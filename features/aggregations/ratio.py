"""Ratio shrunk towards a prior mean (additive smoothing)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from features.aggregations._checks import positive


@dataclass(frozen=True, slots=True)
class SmoothedRatio:
    """``(numerator + prior_mean * prior_weight) / (denominator + prior_weight)``.

    A pure helper with no slot: the numerator and denominator come from other aggregations (e.g. two
    :class:`~features.aggregations.DecayedCount` values for a decayed click-through rate). With no data it
    returns ``prior_mean``; as the denominator grows it tends to ``numerator / denominator``.
    ``prior_weight`` must be > 0, so the result is defined for a zero denominator.

    >>> ctr = SmoothedRatio(prior_mean=0.1, prior_weight=10.0)
    >>> ctr.value(0.0, 0.0)
    0.1
    >>> ctr.value(3.0, 10.0)  # (3 + 1) / (10 + 10)
    0.2
    """

    prior_mean: float
    """The value returned when there is no data."""
    prior_weight: float
    """How many denominator units the prior is worth (> 0)."""

    def __post_init__(self) -> None:
        if not math.isfinite(self.prior_mean):
            raise ValueError(f"prior_mean must be a finite number, got {self.prior_mean!r}")
        positive("prior_weight", self.prior_weight)

    def value(self, numerator: float, denominator: float) -> float:
        """The smoothed ratio. Pure."""
        return (numerator + self.prior_mean * self.prior_weight) / (denominator + self.prior_weight)
