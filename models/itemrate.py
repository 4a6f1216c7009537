"""The tripwire's default yardstick: the smoothed rate of the candidate item, exactly as it was served.

It predicts ``x["xitem_rate"]``, the item-side feature of the vector (``features/itemside.py``): per item, its
decayed labels over its decayed impressions across all users, smoothed towards the global rate. Nothing to
learn, and one number to read per prediction; unlike the CTR of the slot position it is not a constant on
one-candidate requests. A vector without it (item features off) gets the examples' running mean label.

>>> model = ItemRate()
>>> model.predict_proba_one({"xitem_rate": 0.2})[True]
0.2
>>> model.learn_one({}, True); model.learn_one({}, False)
>>> model.predict_proba_one({"cand_position": 0.0})[True]  # no item rate: (1 + 0.1 * 20) / (2 + 20)
0.13636...
"""

from __future__ import annotations

from typing import Any

from river import base

__all__ = ["ItemRate"]


class ItemRate(base.Classifier):
    def __init__(self, key: str = "xitem_rate", prior_mean: float = 0.1, prior_weight: float = 20.0) -> None:
        self.key = key
        self.prior_mean = prior_mean
        self.prior_weight = prior_weight
        self._labels = 0.0
        self._weight = 0.0

    def learn_one(self, x: dict[Any, Any], y: base.typing.ClfTarget, w: float = 1.0) -> None:
        self._labels += w if y else 0.0
        self._weight += w

    def _p(self, x: dict[Any, Any]) -> float:
        p = x.get(self.key)
        if not isinstance(p, float):
            p = (self._labels + self.prior_weight * self.prior_mean) / (self._weight + self.prior_weight)
        return min(max(p, 0.0), 1.0)

    def predict_proba_one(self, x: dict[Any, Any], **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        p = self._p(x)
        return {False: 1.0 - p, True: p}

    def predict_request(self, xs: list[dict[Any, Any]]) -> list[float]:
        """The probability of ``True`` for each of ``xs`` (a request's candidates), without a dict per candidate."""
        return [self._p(x) for x in xs]
