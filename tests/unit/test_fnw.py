"""Fake negative weighting in the learner: unbiased rates, metrics left alone, natural keys, bad records refused."""

from __future__ import annotations

import math
import pickle
import random
from typing import Any

import pytest

from models import fnw
from models.baseline import SmoothedCTR
from models.inverted import Inverted
from models.learner import BadExample, Learner
from models.registry import build
from models.tripwire import Tripwire
from streams.core.records import EARLY_POSITIVE, FAKE_NEGATIVE, LEARNED_EARLY

KEY = b"test-key"
X: dict[Any, Any] = {"cand_position": 0.0}


def make(names: tuple[str, ...] = ("prod", "baseline"), negative_rate: float = 1.0) -> Learner:
    return Learner(list(names), snapshot_every=10**9, key=KEY, metrics_window=100, tripwire=Tripwire(min_count=1),
                   negative_rate=negative_rate)


def early(kind: str, request_id: str, item_id: str = "a", x: dict[str, float] | None = None) -> dict[str, Any]:
    """An early record of one candidate: a positive, or a request's fake negatives with that one candidate."""
    if kind == FAKE_NEGATIVE:
        return fake_negatives(request_id, item_id, x=x)
    return {"kind": kind, "request_id": request_id, "item_id": item_id, "user_id": "u1", "ts": 100.0, "at": 100.0,
            "x": dict(X if x is None else x), "y": 1, "schema": "fs-test"}


def fake_negatives(request_id: str, *item_ids: str, x: dict[str, float] | None = None) -> dict[str, Any]:
    return {"kind": FAKE_NEGATIVE, "request_id": request_id, "user_id": "u1", "ts": 100.0, "at": 100.0,
            "items": [{"item_id": i, "x": dict(X if x is None else x)} for i in item_ids], "y": 0, "schema": "fs-test"}


def closed(request_id: str, y: int, item_id: str = "a", *, fnw_learned: bool = True) -> dict[str, Any]:
    example = {"request_id": request_id, "item_id": item_id, "user_id": "u1", "ts": 100.0, "label_ts": 130.0,
               "x": dict(X), "y": y, "scores_at_serve": {"prod": 0.3, "baseline": 0.1, "position_ctr": 0.2},
               "arm": "A", "served_model": "prod", "model_versions": {}, "schema": "fs-test"}
    return {**example, LEARNED_EARLY: "fnw"} if fnw_learned else example


def delayed_feedback(n: int, rate: float, seed: int = 11) -> tuple[list[dict[str, Any]], float]:
    """What ``learn_from=fnw`` sends for a stationary stream of ``n`` one-candidate requests clicked at ``rate``:
    a fake negative per request at once, its positive a few requests later, the closed example a window later.
    Returns the records in arrival order and the realised click rate."""
    rng = random.Random(seed)
    due: list[tuple[int, int, dict[str, Any]]] = []  # (arrival, tie-break, record)
    clicks = 0
    for i in range(n):
        request_id = f"r{i}"
        y = int(rng.random() < rate)
        clicks += y
        due.append((i, 0, early(FAKE_NEGATIVE, request_id)))
        if y:
            due.append((i + rng.randint(1, 30), 1, early(EARLY_POSITIVE, request_id)))
        due.append((i + 100, 2, closed(request_id, y)))
    return [record for _, _, record in sorted(due, key=lambda d: (d[0], d[1]))], clicks / n


@pytest.mark.parametrize("negative_rate", [1.0, 0.25])
def test_a_calibrated_count_model_learns_the_true_rate_under_fnw_and_not_unweighted(negative_rate: float) -> None:
    records, rate = delayed_feedback(40_000, 0.2)
    learner = make(("position_ctr",), negative_rate=negative_rate)
    naive: Any = SmoothedCTR(key="cand_position", prior_mean=0.1, prior_weight=20.0)  # position_ctr, weights ignored
    for record in records:
        learner.learn_one(record)
        for candidate in record.get("items", [record] if "kind" in record else []):
            naive.learn_one(candidate["x"], bool(record["y"]))
    learned = learner.models["position_ctr"].predict_proba_one(X)[True]
    unweighted = naive.predict_proba_one(X)[True]
    assert abs(learned - rate) < 0.006, (learned, rate)
    # Unweighted, a click rate r is learned as r / (1 + r): each clicked request is one negative and one positive.
    assert abs(unweighted - rate / (1 + rate)) < 0.006 and rate - unweighted > 0.025, (unweighted, rate)
    assert learner.examples == 40_000 and learner.fake_negatives == 40_000
    skipped = learner.negatives_skipped
    assert skipped == 0 if negative_rate == 1.0 else 0.7 * 40_000 < skipped < 0.8 * 40_000, skipped
    assert learner.early_positives == round(rate * 40_000)


def test_prod_learned_under_fnw_is_calibrated_and_unweighted_under_predicts() -> None:
    """The logistic model too: two groups with click rates 0.4 and 0.1, each request a fake negative and, when
    clicked, a positive. FNW learns both rates; the same records unweighted give r / (1 + r)."""
    rng = random.Random(5)
    weighted: Any = build("prod")
    plain: Any = build("prod")
    rates = {"g=a": 0.4, "g=b": 0.1}
    for i in range(30_000):
        group = "g=a" if i % 2 else "g=b"
        x = {group: 1.0}
        for y in [False, *([True] if rng.random() < rates[group] else [])]:
            weighted.learn_one(dict(x), y, w=fnw.weight(y, fnw.own_probability(weighted, x)))
            plain.learn_one(dict(x), y)
    for group, rate in rates.items():
        x = {group: 1.0}
        assert abs(weighted.predict_proba_one(x)[True] - rate) < 0.015, (group, weighted.predict_proba_one(x))
        assert abs(plain.predict_proba_one(x)[True] - rate / (1 + rate)) < 0.015, (group, plain.predict_proba_one(x))
    assert weighted.predict_proba_one({"g=a": 1.0})[True] - plain.predict_proba_one({"g=a": 1.0})[True] > 0.08


def test_the_weights_are_ktenas_and_the_drill_model_weighs_by_what_it_learns() -> None:
    assert fnw.weight(True, 0.25) == 1.25 and fnw.weight(False, 0.25) == pytest.approx(0.75 * 1.25)
    assert fnw.weight(True, 0.0) == 1.0 and fnw.weight(False, 1.0) == 0.0
    inner = build("prod")
    for _ in range(50):
        inner.learn_one({"f": 1.0}, True)
    p = fnw.own_probability(inner, {"f": 1.0})
    assert p > 0.6 and fnw.own_probability(Inverted(inner), {"f": 1.0}) == p  # not 1 - p, which it serves


def test_early_records_teach_the_models_and_never_the_metrics() -> None:
    learner = make()
    before = {name: pickle.dumps(m) for name, m in learner.models.items()}
    assert learner.learn_one(early(FAKE_NEGATIVE, "r1"), offset=0) is True
    assert learner.learn_one(early(EARLY_POSITIVE, "r1"), offset=1) is True
    report = learner.report()
    assert report["models"]["prod"]["cumulative"]["n"] == 0 and report["experiment"] == {}
    assert (report["examples"], report["fake_negatives"], report["early_positives"]) == (0, 1, 1)
    assert learner.offset == 1 and learner.pending == 2
    learned = {name: pickle.dumps(m) for name, m in learner.models.items()}
    assert learned["prod"] != before["prod"]
    # The window-closed example comes later: counted in the metrics with the served score, not learned again.
    assert learner.learn_one(closed("r1", 1), offset=2) is True
    report = learner.report()
    assert report["models"]["prod"]["cumulative"]["n"] == 1
    assert report["models"]["prod"]["cumulative"]["logloss"] == pytest.approx(-math.log(0.3))
    assert report["experiment"]["A"]["n"] == 1 and report["examples"] == 1
    assert {name: pickle.dumps(m) for name, m in learner.models.items()} == learned
    assert learner.pending == 2  # nothing new to snapshot


def test_an_unmarked_closed_example_is_learned_as_under_wait() -> None:
    learner, reference = make(), make()
    learner.learn_one(closed("r1", 1, fnw_learned=False))
    reference.learn_one(closed("r1", 1, fnw_learned=False))
    marked = make()
    marked.learn_one(closed("r1", 1))
    assert pickle.dumps(learner.models["prod"]) == pickle.dumps(reference.models["prod"])
    assert pickle.dumps(learner.models["prod"]) != pickle.dumps(marked.models["prod"])


def test_early_records_are_skipped_by_natural_key_also_after_a_restart() -> None:
    learner = make()
    records = [fake_negatives("r1", "a", "b"), early(EARLY_POSITIVE, "r1")]
    assert [learner.learn_one(r) for r in records] == [True, True]  # same candidate, two kinds: both new
    assert learner.fake_negatives == 2  # one record, two candidates
    assert learner.learn_one(dict(records[0])) is False and learner.duplicates == 2
    learner.learn_one(closed("r1", 1))  # the closed example's key (r1, a) is not the early ones'
    assert learner.examples == 1
    restored = Learner.from_checkpoint(learner.checkpoint(), key=KEY)
    assert (restored.fake_negatives, restored.early_positives) == (2, 1)
    assert [restored.learn_one(r) for r in (*records, closed("r1", 1))] == [False] * 3
    assert pickle.dumps(restored.models["prod"]) == pickle.dumps(learner.models["prod"])


def test_a_candidate_learned_already_is_skipped_and_the_others_of_its_record_are_learned() -> None:
    learner, reference = make(), make()
    learner.learn_one(fake_negatives("r1", "a"))
    assert learner.learn_one(fake_negatives("r1", "a", "b")) is True
    assert (learner.fake_negatives, learner.duplicates) == (2, 1)
    reference.learn_one(fake_negatives("r1", "a", "b"))
    assert pickle.dumps(learner.models["prod"]) == pickle.dumps(reference.models["prod"])


def _second_candidate(change: dict[str, Any]) -> dict[str, Any]:
    """Fake negatives whose second candidate is bad: the first, good one must not be learned either."""
    record = fake_negatives("r1", "a", "b")
    record["items"][1].update(change)
    return record


@pytest.mark.parametrize(("record", "message"), [
    ({**fake_negatives("r1", "a"), "y": 1}, "a fake_negative record has y 0"),
    ({**early(EARLY_POSITIVE, "r1"), "y": 0}, "a positive record has y 1"),
    ({**fake_negatives("r1", "a"), "kind": "maybe"}, "kind must be one of"),
    ({**fake_negatives("r1", "a"), "items": []}, "items must be a non-empty list"),
    ({**fake_negatives("r1", "a"), "items": ["a"]}, r"items\[0\] must be an object with item_id and x"),
    (_second_candidate({"x": {"f": math.nan}}), "feature 'f' must be a finite number"),
    (_second_candidate({"item_id": None}), r"items\[1\].item_id must be a string"),
    ({**early(EARLY_POSITIVE, "r1"), "x": [1.0]}, "x must be an object of numbers"),
    ({k: v for k, v in early(EARLY_POSITIVE, "r1").items() if k != "item_id"}, r"missing field\(s\): item_id"),
])
def test_a_bad_early_record_changes_nothing(record: dict[str, Any], message: str) -> None:
    learner = make()
    before = pickle.dumps(learner.models["prod"])
    with pytest.raises(BadExample, match=message):
        learner.learn_one(record, offset=4)
    assert learner.offset is None and learner.fake_negatives == 0 and learner.early_positives == 0
    assert pickle.dumps(learner.models["prod"]) == before
