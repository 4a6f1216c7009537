"""A deliberately simple baseline: the smoothed click-through rate of a group.

The tripwire compares the production model with this baseline. It is easy to monitor because every
prediction is a ratio of two counters you can read off :meth:`SmoothedCTR.groups`.

>>> model = SmoothedCTR(key="position", prior_mean=0.1, prior_weight=10)
>>> for y in (True, True, False, False):
...     model.learn_one({"position": 1}, y)
>>> model.predict_proba_one({"position": 1})[True]  # (2 + 10 * 0.1) / (4 + 10)
0.21428...
>>> model.predict_proba_one({"position": 7})[True]  # unseen value: the global bucket, same data here
0.21428...
>>> model.predict_proba_one({"price": 3.0}) == model.predict_proba_one({"position": 7})
True

"""

from __future__ import annotations

import math
from typing import Any

from river import base

__all__ = ["GLOBAL", "SmoothedCTR"]

GLOBAL = "__global__"
"""Name of the bucket holding every example, reported by :meth:`SmoothedCTR.groups`."""


class SmoothedCTR(base.Classifier):
    """Smoothed click-through rate, grouped by the value of one feature.

    For a group with clicks ``c`` over (weighted) impressions ``n`` the prediction is the mean of the
    Beta posterior::

        p = (c + prior_weight * prior_mean) / (n + prior_weight)

    so a group with no data predicts ``prior_mean`` and a group with much data predicts its own rate.

    Every example updates the **global bucket** (all examples) and, if ``x[key]`` is present, the group of
    that value. A prediction uses the group of ``x[key]`` when it has one and the global bucket otherwise:
    when the key is missing (or ``None``/NaN), when the value has never been learnt, or when it arrived after
    ``max_groups`` groups already existed. The number of groups is therefore bounded by ``max_groups``
    (plus the global bucket), whatever the cardinality of the feature; values beyond the cap are counted in
    ``overflow`` so the cap is visible rather than silent.

    Parameters
    ----------
    key
        The feature whose value defines the group.
    prior_mean
        Mean of the Beta prior, in (0, 1).
    prior_weight
        Strength of the prior, in pseudo-impressions (> 0).
    max_groups
        At most this many distinct values get a group of their own (>= 0).

    Examples
    --------
    >>> model = SmoothedCTR(prior_mean=0.5, prior_weight=2, max_groups=1)
    >>> model.learn_one({"position": 1}, True)
    >>> model.learn_one({"position": 2}, False)  # cap reached: position 2 only updates the global bucket
    >>> model.groups()
    {'__global__': (1.0, 2.0, 0.5), 1: (1.0, 1.0, 0.666...)}
    >>> model.overflow
    1
    >>> model.predict_proba_one({"position": 2})
    {False: 0.5, True: 0.5}
    >>> model.predict_one({"position": 1})
    True

    """

    def __init__(
        self,
        key: str = "position",
        prior_mean: float = 0.05,
        prior_weight: float = 20.0,
        max_groups: int = 1000,
    ) -> None:
        if not 0.0 < prior_mean < 1.0:
            raise ValueError(f"prior_mean must be in (0, 1), got {prior_mean!r}")
        if not (prior_weight > 0.0 and math.isfinite(prior_weight)):
            raise ValueError(f"prior_weight must be a finite number > 0, got {prior_weight!r}")
        if isinstance(max_groups, bool) or not isinstance(max_groups, int) or max_groups < 0:
            raise ValueError(f"max_groups must be an int >= 0, got {max_groups!r}")
        self.key = key
        self.prior_mean = prior_mean
        self.prior_weight = prior_weight
        self.max_groups = max_groups
        self.overflow = 0
        """How many examples had a value that could not get a group because ``max_groups`` was reached."""
        self._clicks: dict[Any, float] = {}
        self._weights: dict[Any, float] = {}
        self._global_clicks = 0.0
        self._global_weight = 0.0

    def _group(self, x: dict[Any, Any]) -> Any:
        value = x.get(self.key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value

    def learn_one(self, x: dict[Any, Any], y: base.typing.ClfTarget, w: float = 1.0) -> None:
        """Count one impression of weight ``w`` (``y`` truthy means a click)."""
        if not (w >= 0.0 and math.isfinite(w)):
            raise ValueError(f"the weight must be a finite number >= 0, got {w!r}")
        click = w if y else 0.0
        self._global_clicks += click
        self._global_weight += w
        group = self._group(x)
        if group is None:
            return
        if group not in self._weights:
            if len(self._weights) >= self.max_groups:
                self.overflow += 1
                return
            self._clicks[group] = 0.0
            self._weights[group] = 0.0
        self._clicks[group] += click
        self._weights[group] += w

    def _smoothed(self, clicks: float, weight: float) -> float:
        return (clicks + self.prior_weight * self.prior_mean) / (weight + self.prior_weight)

    def predict_proba_one(self, x: dict[Any, Any], **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        group = self._group(x)
        if group is not None and group in self._weights:
            p = self._smoothed(self._clicks[group], self._weights[group])
        else:
            p = self._smoothed(self._global_clicks, self._global_weight)
        return {False: 1.0 - p, True: p}

    def groups(self) -> dict[Any, tuple[float, float, float]]:
        """``{group: (clicks, impressions, smoothed ctr)}``, the global bucket first under :data:`GLOBAL`."""
        out = {GLOBAL: (self._global_clicks, self._global_weight,
                        self._smoothed(self._global_clicks, self._global_weight))}
        for group, weight in self._weights.items():
            clicks = self._clicks[group]
            out[group] = (clicks, weight, self._smoothed(clicks, weight))
        return out
