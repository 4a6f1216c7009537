"""The models, each a River pipeline declared once by name. Everything else refers to them by name.

>>> sorted(MODELS)
['baseline', 'inverted', 'prod']
>>> model = build("prod")
>>> round(model.predict_proba_one({"x": 1.0})[True], 3)  # untrained: no opinion yet
0.5
>>> baseline = build("baseline")
>>> baseline.predict_proba_one({"cand_position": 0.0})[True]  # untrained: the prior mean
0.1
>>> for _ in range(20):
...     baseline.learn_one({"cand_position": 0.0}, True)
>>> baseline.predict_proba_one({"cand_position": 0.0})[True]  # (20 + 20 * 0.1) / (20 + 20)
0.55
>>> build("nope")
Traceback (most recent call last):
...
KeyError: "unknown model 'nope'; declared: baseline, inverted, prod"
"""

from __future__ import annotations

from collections.abc import Callable

from river import base, compose, linear_model, optim, preprocessing

from models.baseline import SmoothedCTR
from models.inverted import Inverted


def prod() -> base.Classifier:
    """Standardised features into a logistic regression: sound on dense numeric and one-hot features,
    cheap per event, and its scores are calibrated probabilities, which the log-loss metrics rely on."""
    pipeline: base.Classifier = compose.Pipeline(  # type: ignore[assignment]  # a Pipeline ending in a classifier is one
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.005), intercept_lr=0.1, l2=1e-4),
    )
    return pipeline


def baseline() -> base.Classifier:
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
    "baseline": baseline,
    "inverted": inverted,
}


def build(name: str) -> base.Classifier:
    try:
        return MODELS[name]()
    except KeyError:
        raise KeyError(f"unknown model {name!r}; declared: {', '.join(sorted(MODELS))}") from None
