"""The models, each a River pipeline declared once by name. Everything else refers to them by name.

>>> sorted(MODELS)
['prod']
>>> model = build("prod")
>>> round(model.predict_proba_one({"x": 1.0})[True], 3)  # untrained: no opinion yet
0.5
"""

from __future__ import annotations

from collections.abc import Callable

from river import base, compose, linear_model, optim, preprocessing


def prod() -> base.Classifier:
    """Standardised features into a logistic regression: sound on dense numeric and one-hot features,
    cheap per event, and its scores are calibrated probabilities, which the log-loss metrics rely on."""
    pipeline: base.Classifier = compose.Pipeline(  # type: ignore[assignment]  # a Pipeline ending in a classifier is one
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.05), l2=1e-4),
    )
    return pipeline


MODELS: dict[str, Callable[[], base.Classifier]] = {
    "prod": prod,
}


def build(name: str) -> base.Classifier:
    try:
        return MODELS[name]()
    except KeyError:
        raise KeyError(f"unknown model {name!r}; declared: {', '.join(sorted(MODELS))}") from None
