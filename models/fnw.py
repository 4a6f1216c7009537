"""Fake negative weighting (FNW): learning from a candidate before its label is final, without bias.

Ktena et al. 2019, "Addressing delayed feedback for continuous training with neural networks in CTR
prediction" (RecSys '19). With ``STREAMSCORE_LEARN_FROM=fnw`` every served candidate reaches the learner at once as
a negative, and again as a positive if it is clicked (``streams/core/early.py``). So for a candidate ``x`` whose
true click probability is ``p``, the learner sees one negative and, with probability ``p``, one positive: the
observed distribution is ``b(1|x) = p / (1 + p)``, ``b(0|x) = 1 / (1 + p)``. Learning it as it is would estimate
``p / (1 + p)`` (a 0.2 click rate learned as 0.167). Importance weights ``p(y|x) / b(y|x)`` undo that:

    w+ = 1 + p            on a positive,
    w- = (1 - p)(1 + p)   on a negative (every fake negative),

with ``p`` the model's own current prediction for ``x``, a constant (no gradient flows through it). Then the
expected weighted log loss at ``x`` is ``(1 + p) * [p * -log f + (1 - p) * -log(1 - f)]``, minimised at ``f = p``:
a calibrated model stays calibrated. For a count model (the baseline's fallback rate, the position CTR) the
estimate ``q`` of a rate ``r`` moves to ``r (1 + q) / (r (1 + q) + (1 - q)(1 + q)) = r / (r + 1 - q)``, whose fixed
point is ``q = r``.

>>> round(weight(True, 0.2), 6), round(weight(False, 0.2), 6)
(1.2, 0.96)
>>> q, r = 0.5, 0.2  # the count model's fixed-point iteration, from a bad start
>>> for _ in range(200):
...     q = r / (r + 1 - q)
>>> round(q, 4)
0.2
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from models.inverted import Inverted
from streams.core.records import EARLY_KINDS, EARLY_POSITIVE

__all__ = ["EarlyExample", "own_probability", "parse_early", "weight"]


def weight(y: bool, p: float) -> float:
    """The FNW importance weight of a positive (``y``) or a (fake) negative, for a model predicting ``p``."""
    p = min(max(p, 0.0), 1.0)
    return 1.0 + p if y else (1.0 - p) * (1.0 + p)


def own_probability(model: Any, x: Mapping[Any, Any]) -> float:
    """The model's current probability of a click on ``x``, as the model that learns sees it: the drill model
    :class:`~models.inverted.Inverted` serves the opposite of what its inner model learns, so its inner model's."""
    learner: Any = model.model if isinstance(model, Inverted) else model
    return float(learner.predict_proba_one(x).get(True, 0.0))


@dataclass(frozen=True, slots=True)
class EarlyExample:
    key: tuple[Hashable, Hashable, str]
    """The natural key ``(request_id, item_id, kind)``: a redelivered early record is skipped by it."""
    x: dict[Hashable, Any]
    y: bool


def parse_early(record: Mapping[str, Any], bad: type[ValueError]) -> EarlyExample:
    """Check an early record completely before anything learns from it; ``bad`` is the error to raise."""
    kind = record.get("kind")
    if kind not in EARLY_KINDS:
        raise bad(f"kind must be one of {', '.join(EARLY_KINDS)}, got {kind!r}")
    missing = [f for f in ("request_id", "item_id", "x", "y") if f not in record]
    if missing:
        raise bad(f"missing field(s): {', '.join(missing)}")
    request_id, item_id, x, y = record["request_id"], record["item_id"], record["x"], record["y"]
    for field, value in (("request_id", request_id), ("item_id", item_id)):
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise bad(f"{field} must be a string, got {value!r}")
    if y != int(kind == EARLY_POSITIVE) or not isinstance(y, int):
        raise bad(f"a {kind} record has y {int(kind == EARLY_POSITIVE)}, got {y!r}")
    if not isinstance(x, Mapping):
        raise bad(f"x must be an object of numbers, got {type(x).__name__}")
    return EarlyExample((request_id, item_id, kind), dict(x), bool(y))
