"""The models, each a River pipeline declared once by name. Everything else refers to them by name.

>>> sorted(MODELS)
['baseline', 'inverted', 'item_rate', 'position_ctr', 'prod', 'prod_lr']
>>> model = build("prod")
>>> round(model.predict_proba_one({"x": 1.0})[True], 3)  # untrained, no item rate: no opinion yet
0.5
>>> round(model.predict_proba_one({"xitem_logit": -3.0})[True], 3)  # untrained: the item's smoothed rate
0.047
>>> build("baseline").predict_proba_one({"xitem_rate": 0.25})[True]  # STREAMSCORE_BASELINE=item_rate
0.25
>>> baseline = build("baseline", baseline="position_ctr")
>>> baseline.predict_proba_one({"cand_position": 0.0})[True]  # untrained: the prior mean
0.1
>>> for _ in range(20):
...     baseline.learn_one({"cand_position": 0.0}, True)
>>> baseline.predict_proba_one({"cand_position": 0.0})[True]  # (20 + 20 * 0.1) / (20 + 20)
0.55
>>> build("nope")
Traceback (most recent call last):
...
KeyError: "unknown model 'nope'; declared: baseline, inverted, item_rate, position_ctr, prod, prod_lr"
"""

from __future__ import annotations

from collections.abc import Callable

from river import base, compose, linear_model, optim, preprocessing

from models.baseline import SmoothedCTR
from models.inverted import Inverted
from models.itemrate import ItemRate
from models.offset import OffsetLogistic


def prod() -> base.Classifier:
    """A logistic regression on top of the candidate item's smoothed log-odds (``models/offset.py``): untrained,
    it serves the item rate; it learns corrections from every feature, numeric ones standardised, one-hots and
    hashed item ids as they are, with per-coordinate (AdaGrad) steps. Its scores are calibrated probabilities,
    which the log-loss metrics rely on."""
    return OffsetLogistic(offset_key="xitem_logit", lr=0.05, l2=1e-5)


def prod_lr() -> base.Classifier:
    """The former ``prod``: standardised features into River's logistic regression (one-hots carry nothing
    through the scaler; no item offset). Kept to compare with."""
    pipeline: base.Classifier = compose.Pipeline(  # type: ignore[assignment]  # a Pipeline ending in a classifier is one
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.005), intercept_lr=0.1, l2=1e-4),
    )
    return pipeline


def item_rate() -> base.Classifier:
    """The smoothed rate of the candidate item across users, as served in its vector (``models/itemrate.py``):
    the default ``baseline``, readable, and not a constant on one-candidate requests."""
    return ItemRate()


def position_ctr() -> base.Classifier:
    """The smoothed click-through rate of the candidate's slot position (``cand_position`` in the vectors).

    Prior Beta(2, 18): mean 0.1, the middle of the 5-15 % CTRs we expect, with a standard deviation of about
    0.065, so 5 % and 15 % are both within one standard deviation of it. Its weight of 20 pseudo-impressions
    is small next to the traffic of a position (a few hundred impressions and the data dominates), yet keeps
    a position's first clicks from sending it to 50 % or 100 %, which would cost the baseline a large log loss
    and make the tripwire too easy to pass.
    """
    return SmoothedCTR(key="cand_position", prior_mean=0.1, prior_weight=20.0)


def inverted() -> base.Classifier:
    """``prod`` serving the opposite of its score: a broken model on purpose, for monitoring drills."""
    return Inverted(prod())


MODELS: dict[str, Callable[[], base.Classifier]] = {
    "prod": prod,
    "baseline": item_rate,
    "inverted": inverted,
    "item_rate": item_rate,
    "position_ctr": position_ctr,
    "prod_lr": prod_lr,
}
"""``baseline`` is the tripwire's yardstick: ``item_rate`` unless ``STREAMSCORE_BASELINE`` names another
(``build(..., baseline=)``)."""


def build(name: str, baseline: str = "item_rate") -> base.Classifier:
    """A fresh model by name; ``baseline`` says which model the name ``baseline`` stands for."""
    if name == "baseline":
        name = baseline
    try:
        return MODELS[name]()
    except KeyError:
        raise KeyError(f"unknown model {name!r}; declared: {', '.join(sorted(MODELS))}") from None
