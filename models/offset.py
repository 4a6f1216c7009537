"""A logistic regression that starts from an offset: the item's log-odds, corrected by what it learns.

``p = sigmoid(x[offset_key] + b + sum_j w_j * s_j(x))``. Untrained (all weights 0) it serves the offset, the
smoothed rate of the candidate item (``features/itemside.py``), rather than a constant 0.5: a model that has not
learned yet is as good as the item rate, not blind (the first attribution window of a log is otherwise scored
by an untrained model). Learning fits the corrections.

Two kinds of inputs, because a one-hot feature standardised over the examples where it is present has a
variance of 0 and so carries nothing (River's ``StandardScaler`` maps it to 0): numeric features are
standardised (running mean and variance, as River's ``StandardScaler``, fused into the same loop), sparse ones
(one-hots ``name=value`` and the hashed ids ``xid_*`` of ``features/builtin.py``) go in as they are.
Per-coordinate AdaGrad steps (as FTRL-Proximal's are): a rare id keeps a large step until it has been seen, a
frequent dense feature settles.

>>> model = OffsetLogistic()
>>> round(model.predict_proba_one({"xitem_logit": -2.0})[True], 4)  # untrained: sigmoid of the offset
0.1192
>>> for _ in range(500):
...     model.learn_one({"xitem_logit": -2.0, "xid_7": 1.0}, True)
>>> round(model.predict_proba_one({"xitem_logit": -2.0, "xid_7": 1.0})[True], 2)  # item 7 learned to click
0.78
>>> round(model.predict_proba_one({"xitem_logit": -2.0, "xid_8": 1.0})[True], 2)  # the intercept's share
0.41
"""

from __future__ import annotations

import math
from typing import Any

from river import base

__all__ = ["OffsetLogistic", "is_sparse"]


def is_sparse(name: str) -> bool:
    """A one-hot (``name=value``) or a hashed id (``xid_*``): passed as is, never standardised."""
    return "=" in name or name.startswith("xid_")


_KINDS: dict[Any, bool] = {}
"""Feature name -> sparse or not, computed once per name (the check was a fifth of the model's time)."""
_MAX_KINDS = 1 << 16


def _sparse(name: Any) -> bool:
    kind = _KINDS.get(name)
    if kind is None:
        kind = is_sparse(str(name))
        if len(_KINDS) < _MAX_KINDS:
            _KINDS[name] = kind
    return kind


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
        self.stats: dict[Any, list[float]] = {}
        """Dense feature -> [count, mean, sum of squared deviations (Welford), 1 / standard deviation or 0], over
        the examples where it is present."""
        self.weights: dict[Any, float] = {}
        self._g2: dict[Any, float] = {}
        self.intercept = 0.0
        self._g2_intercept = 0.0

    _terms: dict[Any, tuple[float, float, float] | float] | None = None
    """What scoring a request reads of each feature that counts: a sparse one's weight, a dense one's (weight,
    mean, 1 / standard deviation); built by the first :meth:`predict_request` after learning, so once per
    snapshot a scorer loads. Learning drops it, and it is never pickled."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_terms", None)  # derived: a snapshot's bytes stay what they were without it
        return state

    def _raw(self, x: dict[Any, Any]) -> float:
        """The log-odds of ``x``, in one pass (no intermediate dict: this runs for every candidate scored)."""
        weights, stats, kinds = self.weights, self.stats, _KINDS
        z = float(x.get(self.offset_key, 0.0)) + self.intercept
        for k, v in x.items():
            w = weights.get(k)
            if w is None:
                continue
            sparse = kinds.get(k)
            if sparse is None:
                sparse = _sparse(k)
            if sparse:
                z += w * v
            else:
                st = stats[k]
                if st[3]:
                    z += w * (v - st[1]) * st[3]
        return max(-self.clip, min(self.clip, z))

    def _scoring_terms(self) -> dict[Any, tuple[float, float, float] | float]:
        terms: dict[Any, tuple[float, float, float] | float] = {}
        for k, w in self.weights.items():
            if _sparse(k):
                terms[k] = w
            else:
                st = self.stats[k]
                if st[3]:  # a feature with no spread standardises to 0: it adds nothing (as in _raw)
                    terms[k] = (w, st[1], st[3])
        self._terms = terms
        return terms

    def predict_request(self, xs: list[dict[Any, Any]]) -> list[float]:
        """The probability of ``True`` for each of ``xs`` (a request's candidates), the very floats of
        :meth:`predict_proba_one` (``tests/unit/test_scorer.py`` compares them): the terms are added in the order
        of each ``x``, as :meth:`_raw` adds them, with one lookup per feature instead of three and no dict per
        candidate. For a model that does not learn between scores (a scorer's snapshot): learning drops the terms,
        and rebuilding them costs a pass over every weight."""
        terms = self._terms
        if terms is None:
            terms = self._scoring_terms()
        offset_key, intercept, clip = self.offset_key, self.intercept, self.clip
        out = []
        for x in xs:
            z = float(x.get(offset_key, 0.0)) + intercept
            # An untrained model (a fresh one, until its first snapshot) has no term: nothing to look up.
            for k, v in x.items() if terms else ():
                t = terms.get(k)
                if t is None:
                    continue
                if type(t) is tuple:
                    z += t[0] * (v - t[1]) * t[2]
                else:
                    z += t * v
            out.append(_sigmoid(max(-clip, min(clip, z))))
        return out

    def predict_proba_one(self, x: dict[Any, Any], **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        p = _sigmoid(self._raw(x))
        return {False: 1.0 - p, True: p}

    def learn_one(self, x: dict[Any, Any], y: base.typing.ClfTarget, w: float = 1.0) -> None:
        self._terms = None
        # Dense statistics first, then the inputs they give, as a River pipeline learns its scaler first.
        stats, kinds = self.stats, _KINDS
        inputs: list[tuple[Any, float]] = []
        for k, v in x.items():
            sparse = kinds.get(k)
            if sparse is None:
                sparse = _sparse(k)
            if sparse:
                inputs.append((k, v))
                continue
            st = stats.get(k)
            if st is None:
                st = stats[k] = [0.0, 0.0, 0.0, 0.0]
            st[0] += 1.0
            delta = v - st[1]
            st[1] += delta / st[0]
            st[2] += delta * (v - st[1])
            st[3] = 1.0 / math.sqrt(st[2] / st[0]) if st[2] > 1e-12 else 0.0
            inputs.append((k, (v - st[1]) * st[3]))
        weights = self.weights
        z = float(x.get(self.offset_key, 0.0)) + self.intercept
        for k, v in inputs:
            wk = weights.get(k)
            if wk is not None:
                z += wk * v
        g = (_sigmoid(max(-self.clip, min(self.clip, z))) - (1.0 if y else 0.0)) * w
        if g == 0.0:
            return
        lr, l2, g2 = self.lr, self.l2, self._g2
        self._g2_intercept += g * g
        self.intercept -= lr * g / math.sqrt(self._g2_intercept)
        for k, v in inputs:
            if v == 0.0:
                continue
            old = weights.get(k, 0.0)
            gk = g * v + l2 * old
            acc = g2.get(k, 0.0) + gk * gk
            g2[k] = acc
            weights[k] = old - lr * gk / math.sqrt(acc)
