"""Shadow scoring: every live model scores every request; the user's arm picks the score that is served.

>>> scorer = Scorer.fresh(["prod"])
>>> out = scorer.score_one("u1", [{"x": 1.0}, {"x": 2.0}])
>>> out.arm, out.model, out.model_version, out.per_model
('A', 'prod', 0, {'prod': [0.5, 0.5]})

A model is replaced only by a newer version of itself, so a snapshot read late, or twice, changes nothing:

>>> scorer.swap(LiveModel("prod", 3, build("prod")))
True
>>> scorer.swap(LiveModel("prod", 2, build("prod"))), scorer.swap(LiveModel("prod", 3, build("prod")))
(False, False)
>>> scorer.versions
{'prod': 3}
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from river import base

from models.registry import build

Vector = dict[str, float]
RiverX = dict[Hashable, Any]  # River's signature; dict is invariant, so a Vector needs the cast


@dataclass(frozen=True, slots=True)
class LiveModel:
    name: str
    version: int
    """0 for a fresh, untrained model; then the version of the snapshot it was loaded from."""
    model: base.Classifier


@dataclass(frozen=True, slots=True)
class ScoredRequest:
    arm: str
    model: str
    model_version: int
    per_model: dict[str, list[float]]

    @property
    def served(self) -> list[float]:
        return self.per_model[self.model]


ArmAssigner = Callable[[str], tuple[str, str]]
"""user_id -> (arm name, name of the model that arm serves)."""


def single_arm(user_id: str) -> tuple[str, str]:
    return ("A", "prod")


class Scorer:
    def __init__(self, models: Iterable[LiveModel], assign: ArmAssigner = single_arm) -> None:
        self.models = {m.name: m for m in models}
        self.assign = assign

    @classmethod
    def fresh(cls, names: Sequence[str], assign: ArmAssigner = single_arm, baseline: str = "item_rate") -> Scorer:
        return cls([LiveModel(name, 0, build(name, baseline)) for name in names], assign)

    @property
    def versions(self) -> dict[str, int]:
        return {name: m.version for name, m in self.models.items()}

    def swap(self, live: LiveModel) -> bool:
        """Serve ``live`` from now on in place of the model of the same name, if it is newer.

        Returns False, and keeps the current model, when ``live.version`` is not above the current version:
        snapshots are re-read from the start of their topic and may arrive out of order, and going back to an
        older model would silently undo training. A name that is not live raises :class:`KeyError`: the set
        of models is fixed by the settings, and every ``feature-log`` record names the same ones.
        """
        current = self.models.get(live.name)
        if current is None:
            raise KeyError(f"model {live.name!r} is not live: {sorted(self.models)}")
        if live.version <= current.version:
            return False
        # One dict assignment: a request scored on this event loop sees either the old model or the new one.
        self.models[live.name] = live
        return True

    def score_one(self, user_id: str, vectors: Sequence[Vector]) -> ScoredRequest:
        arm, served = self.assign(user_id)
        if served not in self.models:
            raise KeyError(f"arm {arm!r} serves model {served!r}, which is not live: {sorted(self.models)}")
        per_model = {name: probabilities(live.model, vectors) for name, live in self.models.items()}
        return ScoredRequest(arm, served, self.models[served].version, per_model)


def probabilities(model: base.Classifier, vectors: Sequence[Vector]) -> list[float]:
    """The probability of ``True`` of each vector: a request's candidates together when the model can score them
    so (``predict_request``, the same floats), else one by one. (Not River's ``predict_proba_many``, which takes a
    DataFrame.)"""
    many = getattr(model, "predict_request", None)
    if many is not None:
        scores: list[float] = many(list(vectors))
        return scores
    return [model.predict_proba_one(cast(RiverX, x)).get(True, 0.0) for x in vectors]
