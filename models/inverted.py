"""A deliberately broken model, for drills: it learns like its inner model and serves the opposite score.

Declare it as a challenger and serve it on an arm to check that the monitoring catches a bad model: the
arm's tripwire alerts, and the experiment report flags the arm as significantly worse.

>>> from river import linear_model
>>> model = Inverted(linear_model.LogisticRegression())
>>> for _ in range(20):
...     model.learn_one({"x": 1.0}, True)
>>> model.predict_proba_one({"x": 1.0})[True] < 0.5
True
"""

from __future__ import annotations

from typing import Any

from river import base


class Inverted(base.Classifier):
    def __init__(self, model: base.Classifier) -> None:
        self.model = model

    def learn_one(self, x: dict[Any, Any], y: base.typing.ClfTarget, **kwargs: Any) -> None:
        self.model.learn_one(x, y, **kwargs)

    def predict_proba_one(self, x: dict[Any, Any], **kwargs: Any) -> dict[base.typing.ClfTarget, float]:
        p = self.model.predict_proba_one(x, **kwargs).get(True, 0.0)
        return {False: p, True: 1.0 - p}
