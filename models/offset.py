"""A logistic regression that starts from an offset: the item's log-odds, corrected by what it learns.

``p = sigmoid(x[offset_key] + b + sum_j w_j * s_j(x))``. Untrained (all weights 0) it serves the offset, the
smoothed rate of the candidate item (``features/itemside.py``), rather than a constant 0.5: a model that has not
learned yet is as good as the item rate, not blind (the first attribution window of a log is otherwise scored
by an untrained model). Learning fits the corrections.

Two kinds of inputs, because a one-hot feature standardised over the examples where it is present has a
variance of 0 and so carries nothing (River's ``StandardScaler`` maps it to 0): numeric features are standardised
(River's ``StandardScaler``), sparse ones (one-hots ``name=value`` and the hashed ids ``xid_*`` of
``features/builtin.py``) go in as they are. Per-coordinate AdaGrad steps (as FTRL-Proximal's are): a rare id
keeps a large step until it has been seen, a frequent dense feature settles.

>>> model = OffsetLogistic()
>>> round(model.predict_proba_one({"xitem_logit": -2.0})[True], 4)  # untrained: sigmoid of the offset
0.1192
>>> for _ in range(200):
...     model.learn_one({"xitem_logit": -2.0, "xid_7": 1.0}, True)
>>> model.predict_proba_one({"xitem_logit": -2.0, "xid_7": 1.0})[True] > 0.9
True
"""

from __future__ import annotations

import math
from typing import Any

from river import base, preprocessing

__all__ = ["OffsetLogistic", "is_sparse"]


def is_sparse(name: str) -> bool:
    """A one-hot (``name=value``) or a hashed id (``xid_*``): passed as is, never standardised."""
    return "=" in name or name.startswith("xid_")


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class OffsetLogistic(base.Classifier):
    def __init__(self, offset_key: str = "xitem_logit", lr: float = 0.05, l2: float = 1e-5,
                 clip: float = 30.0) -> None:
        self.offset_key = offset_key
        self.lr = lr
        self.l2 = l2
        self.clip = clip
        self.scaler = preprocessing.StandardScaler()
        self.weights: dict[Any, float] = {}
        self._g2: dict[Any, float] = {}
        self.intercept = 0.0
        self._g2_intercept = 0.0

    def _inputs(self, x: dict[Any, Any]) -> dict[Any, float]:
        dense = {k: v for k, v in x.items() if not is_sparse(str(k))}
        out = dict(self.scaler.transform_one(dense)) if dense else {}
        out.update((k, v) for k, v in x.items() if is_sparse(str(k)))
        return out

    def _raw(self, x: dict[Any, Any], inputs: dict[Any, float]) -> float:
        weights = self.weights
        z = float(x.get(self.offset_key, 0.0)) + self.intercept
        for k, v in inputs.items():
            w = weights.get(k)
            if w is not None:
                z += w * v
        return max(-self.clip, min(self.clip, z))

    def predict_proba_one(self, x: dict[Any, Any], **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        p = _sigmoid(self._raw(x, self._inputs(x)))
        return {False: 1.0 - p, True: p}

    def learn_one(self, x: dict[Any, Any], y: base.typing.ClfTarget, w: float = 1.0) -> None:
        dense = {k: v for k, v in x.items() if not is_sparse(str(k))}
        if dense:
            self.scaler.learn_one(dense)
        inputs = self._inputs(x)
        g = (_sigmoid(self._raw(x, inputs)) - (1.0 if y else 0.0)) * w
        if g == 0.0:
            return
        self._g2_intercept += g * g
        self.intercept -= self.lr * g / math.sqrt(self._g2_intercept)
        weights, g2 = self.weights, self._g2
        for k, v in inputs.items():
            if v == 0.0:
                continue
            old = weights.get(k, 0.0)
            gk = g * v + self.l2 * old
            acc = g2.get(k, 0.0) + gk * gk
            g2[k] = acc
            weights[k] = old - self.lr * gk / math.sqrt(acc)
