"""The contract every model of the registry keeps, as checks that take its name (like River's ``river/checks``).

``tests/unit/test_model_contracts.py`` runs every check over every model of :data:`models.registry.MODELS`, so a
model declared there brings its contract tests with it:

- :func:`check_snapshot_round_trip`: a trained model, signed and loaded back, scores and keeps learning exactly
  as the original (what the workers' hot-swap and the learner's checkpoint rely on);
- :func:`check_probabilities`: every score is a probability in [0, 1], untrained, while learning and on odd
  vectors (empty, huge, negative values), as the log loss and the calibration need;
- :func:`check_deterministic_learning`: two models learning the same examples give the same scores, bit for
  bit (what makes a replay reproduce its outputs);
- :func:`check_sample_weight`: the model learns with a sample weight ``w`` (the learner's negative subsampling
  weights the negatives it keeps), a weight of 1 exactly as without one;
- :func:`check_pickle_has_no_set`: a trained model's pickle holds no set of several items, whose order hangs
  on the hash seed and on its history (a learner restored from its checkpoint must publish the bytes an
  uninterrupted one does).

The examples are realistic: the default feature set's vectors for a synthetic stream (``features/checks.py``).

>>> for check in CHECKS:
...     check("baseline")
"""

from __future__ import annotations

import io
import math
import pickle
import random
from collections.abc import Callable
from functools import cache
from typing import Any

import orjson

from features.base import Vector
from features.checks import event_stream
from features.featureset import FeatureSet
from models.registry import build
from models.snapshots import dump_snapshot, load_snapshot
from streams.events import Request, decode_event

__all__ = ["CHECKS", "check_deterministic_learning", "check_pickle_has_no_set", "check_probabilities",
           "check_sample_weight", "check_snapshot_round_trip", "examples", "sets_pickled"]

_KEY = b"contract-check-key"
_ODD_VECTORS: tuple[Vector, ...] = (
    {},
    {"cand_position": 0.0},
    {"cand_position": 1e6, "ctr_user": 1e12, "cand_price": -1e9},
    {"activity_events": 0.0, "item_seen": 1.0, "unknown_feature": -3.5},
)


@cache
def examples(n: int = 600, seed: int = 3) -> tuple[tuple[Vector, bool], ...]:
    """``(vector, label)`` pairs: the default features of a synthetic stream's candidates, about 1 in 10 positive."""
    rng = random.Random(seed)
    features = FeatureSet.default()
    states: dict[str, dict[str, Any]] = {}
    out: list[tuple[Vector, bool]] = []
    for position, raw in enumerate(event_stream(n, seed=seed, users=5)):
        event = decode_event(orjson.dumps(raw))
        state = states.setdefault(event.user_id, {})
        if isinstance(event, Request):
            out.extend((x, rng.random() < 0.1 + 0.1 * (x.get("cand_position", 0.0) == 0.0))
                       for x in features.vectors(state, event))
        features.update(state, event, position)
    return tuple(out)


def _p(model: Any, x: Vector) -> float:
    return float(model.predict_proba_one(x).get(True, 0.0))


def _learn(model: Any, pairs: tuple[tuple[Vector, bool], ...]) -> Any:
    for x, y in pairs:
        model.learn_one(dict(x), y)
    return model


def check_snapshot_round_trip(name: str) -> None:
    """Signed, loaded back: the same scores now, and the same scores after learning more."""
    data = examples()
    half = len(data) // 2
    model = _learn(build(name), data[:half])
    snapshot = load_snapshot(dump_snapshot(model, name=name, version=1, key=_KEY), key=_KEY)
    assert (snapshot.name, snapshot.version) == (name, 1)
    loaded = snapshot.model
    probes = [x for x, _ in data[half:half + 50]]
    assert [_p(loaded, x) for x in probes] == [_p(model, x) for x in probes], f"{name}: scores changed on loading"
    _learn(model, data[half:])
    _learn(loaded, data[half:])
    assert [_p(loaded, x) for x in probes] == [_p(model, x) for x in probes], (
        f"{name}: the loaded model learns differently from the original")


def check_probabilities(name: str) -> None:
    """Every score is a finite number in [0, 1]: untrained, after each example, and on odd vectors."""
    model: Any = build(name)
    for x, y in examples():
        for vector in (x, *_ODD_VECTORS):
            p = _p(model, vector)
            assert math.isfinite(p) and 0.0 <= p <= 1.0, f"{name}: score {p!r} for {vector}"
        model.learn_one(dict(x), y)


def check_deterministic_learning(name: str) -> None:
    """Two models learning the same examples score the same, bit for bit."""
    data = examples()
    a, b = _learn(build(name), data), _learn(build(name), data)
    probes = [x for x, _ in data[:100]] + list(_ODD_VECTORS)
    assert [_p(a, x) for x in probes] == [_p(b, x) for x in probes], f"{name}: learning is not deterministic"


def check_sample_weight(name: str) -> None:
    """``learn_one(x, y, w=1.0)`` learns exactly as ``learn_one(x, y)``; other weights give probabilities."""
    data = examples()
    # Any: River's abstract learn_one has no weight parameter, every registry model's has.
    plain: Any = build(name)
    weighted: Any = build(name)
    reweighted: Any = build(name)
    for x, y in data:
        plain.learn_one(dict(x), y)
        weighted.learn_one(dict(x), y, w=1.0)
        reweighted.learn_one(dict(x), y, w=0.5 if y else 2.0)
    probes = [x for x, _ in data[:100]] + list(_ODD_VECTORS)
    assert [_p(weighted, x) for x in probes] == [_p(plain, x) for x in probes], f"{name}: w=1 learns differently"
    for x in probes:
        p = _p(reweighted, x)
        assert math.isfinite(p) and 0.0 <= p <= 1.0, f"{name}: score {p!r} after weighted learning, for {x}"


class _SetFinder(pickle.Pickler):
    """Pickles into nothing, noting each set of two or more items on the way (pickle visits every object)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), protocol=5)
        self.found: list[set[Any] | frozenset[Any]] = []

    def persistent_id(self, obj: Any) -> None:
        if isinstance(obj, (set, frozenset)) and len(obj) > 1:
            self.found.append(obj)


def sets_pickled(obj: Any) -> list[set[Any] | frozenset[Any]]:
    """The sets of two or more items that pickling ``obj`` would write.

    A set pickles in its iteration order, which depends on the hash seed and on which keys were added and
    discarded before: an equal set rebuilt by unpickling can iterate, and so pickle, in another order. (A set
    of one item or none has one order; River's pipelines keep such sets of parameter names.)

    >>> sets_pickled({"a": [1, 2], "b": {3}}), sets_pickled({"a": {1, 2}})
    ([], [{1, 2}])
    """
    finder = _SetFinder()
    finder.dump(obj)
    return finder.found


def check_pickle_has_no_set(name: str) -> None:
    """A trained model pickles no set of two or more items (:func:`sets_pickled`): its bytes depend on what it
    learned only."""
    found = sets_pickled(_learn(build(name), examples()))
    assert not found, (f"{name}: its pickle holds {len(found)} set(s) of several items, whose order hangs on the "
                       "hash seed; give their owner a __getstate__ that drops or sorts them")


CHECKS: tuple[Callable[[str], None], ...] = (check_snapshot_round_trip, check_probabilities,
                                             check_deterministic_learning, check_sample_weight,
                                             check_pickle_has_no_set)
