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
    """The candidate's natural key ``(request_id, item_id, kind)``: a redelivered early record is skipped by it."""
    x: dict[Hashable, Any]
    y: bool


def parse_early(record: Mapping[str, Any], bad: type[ValueError]) -> list[EarlyExample]:
    """The candidates of an early record (every candidate of a request's fake negatives, one positive), checked
    completely before anything learns from them; ``bad`` is the error to raise.

    >>> [(e.key, e.y) for e in parse_early({"kind": "fake_negative", "request_id": "r1", "y": 0, "items": [
    ...     {"item_id": "a", "x": {"f": 1.0}}, {"item_id": "b", "x": {}}]}, ValueError)]
    [(('r1', 'a', 'fake_negative'), False), (('r1', 'b', 'fake_negative'), False)]
    """
    kind = record.get("kind")
    if kind not in EARLY_KINDS:
        raise bad(f"kind must be one of {', '.join(EARLY_KINDS)}, got {kind!r}")
    one = kind == EARLY_POSITIVE
    missing = [f for f in ("request_id", *(("item_id", "x") if one else ("items",)), "y") if f not in record]
    if missing:
        raise bad(f"missing field(s): {', '.join(missing)}")
    request_id, y = record["request_id"], record["y"]
    _check_id("request_id", request_id, bad)
    if y != int(one) or not isinstance(y, int):
        raise bad(f"a {kind} record has y {int(one)}, got {y!r}")
    if one:
        return [_candidate(record, (request_id, record["item_id"], kind), bool(y), "", bad)]
    items = record["items"]
    if not isinstance(items, list) or not items:
        raise bad(f"items must be a non-empty list of candidates, got {items!r}")
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or "item_id" not in item or "x" not in item:
            raise bad(f"items[{i}] must be an object with item_id and x")
    return [_candidate(item, (request_id, item["item_id"], kind), False, f"items[{i}].", bad)
            for i, item in enumerate(items)]


def _check_id(field: str, value: Any, bad: type[ValueError]) -> None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise bad(f"{field} must be a string, got {value!r}")


def _candidate(fields: Mapping[str, Any], key: tuple[Hashable, Hashable, str], y: bool, where: str,
               bad: type[ValueError]) -> EarlyExample:
    _check_id(f"{where}item_id", key[1], bad)
    x = fields["x"]
    if not isinstance(x, Mapping):
        raise bad(f"{where}x must be an object of numbers, got {type(x).__name__}")
    return EarlyExample(key, dict(x), y)
