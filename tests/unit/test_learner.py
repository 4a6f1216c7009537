"""The learner: redeliveries skipped, predict-then-learn metrics, snapshot cadence, exact resumption, tripwire, arms."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Hashable
from typing import Any

import orjson
import pytest

from models.checks import sets_pickled
from models.learner import CHECKPOINT, BadExample, Learner, _canonical_loads
from models.snapshots import SnapshotRejected, load_snapshot
from models.tripwire import Tripwire

KEY = b"test-key"


def make(names: tuple[str, ...] = ("prod", "baseline"), *, snapshot_every: int = 1000, window: int = 100,
         min_count: int = 1, snapshot_seconds: float | None = None) -> Learner:
    return Learner(list(names), snapshot_every=snapshot_every, key=KEY, metrics_window=window,
                   tripwire=Tripwire(min_count=min_count), snapshot_seconds=snapshot_seconds)


def example(request_id: str, y: int, *, item_id: str = "a", prod: float = 0.5, baseline: float = 0.1,
            arm: str = "A", served: str = "prod", x: dict[str, float] | None = None,
            user_id: str = "u1") -> dict[str, Any]:
    return {"request_id": request_id, "item_id": item_id, "user_id": user_id, "ts": 160.0, "label_ts": 175.0,
            "x": x if x is not None else {"f": 1.0, "cand_position": 0.0}, "y": y,
            "scores_at_serve": {"prod": prod, "baseline": baseline}, "arm": arm, "served_model": served,
            "model_versions": {"prod": 0, "baseline": 0}, "schema": "fs-test"}


def stream(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Examples as the live learner gets them: decoded from JSON bytes."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x = {"f": rng.uniform(-1.0, 1.0), "g": float(rng.randrange(3)), "cand_position": float(i % 4)}
        y = int(rng.random() < 0.3 + 0.4 * (x["f"] > 0))
        out.append(orjson.loads(orjson.dumps(example(f"r{i // 2}", y, item_id="ab"[i % 2], x=x,
                                                     prod=rng.uniform(0.05, 0.95), baseline=0.3))))
    return out


def test_redeliveries_are_skipped_counted_and_not_learned() -> None:
    learner, reference = make(), make()
    e1, e2 = example("r1", 1), example("r1", 0, item_id="b")  # same request, another item: a new example
    assert [learner.learn_one(e) for e in (e1, e1, e2, dict(e1))] == [True, False, True, False]
    for e in (e1, e2):
        reference.learn_one(e)
    assert (learner.examples, learner.duplicates) == (2, 2)
    assert learner.report()["models"]["prod"]["cumulative"]["n"] == 2
    assert learner.report()["experiment"]["A"]["n"] == 2
    for name in ("prod", "baseline"):  # learned once each, exactly like a learner that never saw the copies
        assert pickle.dumps(learner.models[name]) == pickle.dumps(reference.models[name])


def test_metrics_use_the_score_at_serve_not_the_learned_model() -> None:
    learner = make()
    # A fresh prod would say 0.5; after learning a positive it says more. Serving said 0.52.
    learner.learn_one(example("r1", 1, prod=0.52, baseline=0.05))
    report = learner.report()
    prod = report["models"]["prod"]["cumulative"]
    assert prod["n"] == 1 and prod["mean_score"] == 0.52
    assert prod["logloss"] == pytest.approx(-math.log(0.52))
    assert report["models"]["baseline"]["cumulative"]["logloss"] == pytest.approx(-math.log(0.05))
    assert report["models"]["prod"]["per_arm"]["A"]["recent"]["n"] == 1
    learned = learner.models["prod"].predict_proba_one({"f": 1.0, "cand_position": 0.0})[True]
    assert 0.5 < learned != 0.52  # the model did learn, after being scored: neither 0.5 nor 0.52 were its own
    # The arm's sample takes the served model's score: -log(0.52).
    assert report["experiment"] == {"A": {"n": 1, "label_rate": 1.0, "logloss": pytest.approx(-math.log(0.52)),
                                          "label_rate_low": None, "label_rate_high": None,
                                          "logloss_low": None, "logloss_high": None}}  # one user: no spread yet


def test_unknown_models_are_ignored_and_missing_scores_leave_metrics_alone() -> None:
    learner = make()
    e = example("r1", 1, prod=0.52)
    e["scores_at_serve"] = {"prod": 0.52, "other": 0.9}  # no baseline score; "other" is not ours
    learner.learn_one(e)
    report = learner.report()
    assert sorted(report["models"]) == ["baseline", "prod"]
    assert report["models"]["baseline"]["cumulative"]["n"] == 0
    # ... but the baseline still learned: (1 + 20 * 0.1) / (1 + 20)
    assert learner.models["baseline"].predict_proba_one({"cand_position": 0.0})[True] == pytest.approx(3 / 21)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("y"), "missing field"),
        (lambda e: e.update(y=2), "y must be 0 or 1"),
        (lambda e: e.update(x={"f": math.nan}), "finite number"),
        (lambda e: e.update(x={"f": "3"}), "finite number"),
        (lambda e: e["scores_at_serve"].update(prod=1.5), "probability"),
        (lambda e: e.update(served_model="nope"), "has no score"),
        (lambda e: e.update(arm="*"), "arm must be"),
    ],
)
def test_a_bad_example_changes_nothing(change: Any, message: str) -> None:
    learner = make()
    learner.learn_one(example("r0", 0), offset=4)
    before = pickle.dumps(learner.models["prod"])
    bad = example("r1", 1)
    change(bad)
    with pytest.raises(BadExample, match=message):
        learner.learn_one(bad, offset=5)
    assert (learner.examples, learner.offset, learner.rejected) == (1, 4, 0)
    assert pickle.dumps(learner.models["prod"]) == before
    learner.reject_one(5)
    assert (learner.offset, learner.rejected) == (5, 1)
    with pytest.raises(BadExample, match="JSON object"):
        learner.learn_one(None)  # type: ignore[arg-type]


def test_snapshot_cadence_by_count_and_by_time() -> None:
    learner = make(snapshot_every=3, snapshot_seconds=10.0)
    assert not learner.due_snapshot()  # nothing learned: never due
    learner.learn_one(example("r1", 1))
    learner.learn_one(example("r1", 1))  # a duplicate does not count
    learner.learn_one(example("r2", 0))
    assert learner.pending == 2 and not learner.due_snapshot()
    learner.learn_one(example("r3", 0))
    assert learner.due_snapshot()
    learner.snapshots()
    assert learner.pending == 0 and not learner.due_snapshot(1000.0)

    learner.learn_one(example("r4", 1))
    assert not learner.due_snapshot(100.0)  # the clock starts here
    assert not learner.due_snapshot(109.9)
    assert learner.due_snapshot(110.0)
    learner.snapshots(now=110.0)
    learner.learn_one(example("r5", 1))
    assert not learner.due_snapshot(119.0)
    assert learner.due_snapshot(120.0)


def test_versions_count_snapshot_rounds_and_meta_names_examples_and_offset() -> None:
    learner = make()
    learner.learn_one(example("r1", 1), offset=10)
    first = learner.snapshots()
    learner.learn_one(example("r2", 0), offset=11)
    learner.reject_one(12)
    second = learner.snapshots()
    assert [name for name, _ in first] == ["prod", "baseline", CHECKPOINT]
    loaded = [load_snapshot(blob, key=KEY) for _, blob in first + second]
    assert [(s.name, s.version) for s in loaded] == [
        ("prod", 1), ("baseline", 1), (CHECKPOINT, 1), ("prod", 2), ("baseline", 2), (CHECKPOINT, 2)]
    assert loaded[0].meta == {"examples": 1, "offset": 10}
    assert loaded[4].meta == {"examples": 2, "offset": 12}
    assert loaded[4].model.predict_proba_one({"cand_position": 0.0})[True] == pytest.approx((1 + 2) / (2 + 20))
    assert learner.report()["snapshots"] == {"prod": 2, "baseline": 2}
    learner.advance_versions({"prod": 5, "baseline": 1, "gone": 9})  # published past the checkpoint
    assert learner.versions == {"prod": 5, "baseline": 2}


def test_a_restored_learner_continues_byte_for_byte() -> None:
    examples = stream(60)
    redelivered = examples[:20] + examples[20:40] + [examples[5], examples[33]] + examples[40:]
    uninterrupted = make(snapshot_every=20)
    rounds: list[list[tuple[str, bytes]]] = []
    for offset, e in enumerate(redelivered):
        uninterrupted.learn_one(e, offset=offset)
        if uninterrupted.due_snapshot():
            rounds.append(uninterrupted.snapshots())
    assert len(rounds) == 3 and uninterrupted.duplicates == 2

    crashed = make(snapshot_every=20)
    for offset, e in enumerate(redelivered[:30]):  # ten examples past its first checkpoint, then lost
        crashed.learn_one(e, offset=offset)
        if crashed.due_snapshot():
            checkpoint = dict(crashed.snapshots())[CHECKPOINT]
    assert checkpoint == dict(rounds[0])[CHECKPOINT]

    resumed = Learner.from_checkpoint(checkpoint, key=KEY)
    assert resumed.offset == 19 and resumed.examples == 20 and resumed.versions == {"prod": 1, "baseline": 1}
    resumed_rounds = []
    for offset, e in enumerate(redelivered[resumed.offset + 1:], start=resumed.offset + 1):
        resumed.learn_one(e, offset=offset)
        if resumed.due_snapshot():
            resumed_rounds.append(resumed.snapshots())
    assert resumed_rounds == rounds[1:]  # models and checkpoints, byte for byte
    assert resumed.duplicates == 2  # examples 5 and 33 were remembered across the restart
    assert resumed.report() == uninterrupted.report()


def test_a_checkpoint_pickles_no_set() -> None:
    """A set pickles in an order that hangs on the hash seed and its history, so a restored learner's next
    checkpoint would differ from an uninterrupted one's under some seeds (as the metrics' memory once did)."""
    learner = make()
    for offset, e in enumerate(stream(60)):
        learner.learn_one(e, offset=offset)
    checkpoint = load_snapshot(learner.checkpoint(), key=KEY).model
    state = _canonical_loads(checkpoint["state"], checkpoint["strings"])
    assert sets_pickled(state) == []


def test_a_tampered_or_foreign_checkpoint_is_refused() -> None:
    learner = make()
    learner.learn_one(example("r1", 1))
    blobs = dict(learner.snapshots())
    tampered = bytearray(blobs[CHECKPOINT])
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(SnapshotRejected) as refused:
        Learner.from_checkpoint(bytes(tampered), key=KEY)
    assert refused.value.reason == "bad signature"
    with pytest.raises(SnapshotRejected):
        Learner.from_checkpoint(blobs[CHECKPOINT], key=b"another key")
    with pytest.raises(ValueError, match="not a learner checkpoint"):
        Learner.from_checkpoint(blobs["prod"], key=KEY)


def test_restoring_with_other_models_keeps_the_common_ones() -> None:
    learner = make(names=("prod",))
    learner.learn_one(example("r1", 1))
    blob = dict(learner.snapshots())[CHECKPOINT]
    resumed = Learner.from_checkpoint(blob, key=KEY, names=["prod", "baseline"], snapshot_every=7)
    assert resumed.versions == {"prod": 1, "baseline": 0}
    assert resumed.snapshot_every == 7
    assert dict(resumed.snapshots())["prod"] == dict(learner.snapshots())["prod"]


def alternating(n: int, score: Any) -> list[dict[str, Any]]:
    return [example(f"r{i}", i % 2, prod=score(i % 2), baseline=0.5) for i in range(n)]


def test_the_tripwire_raises_when_prod_is_worse_than_the_baseline() -> None:
    learner = make(min_count=20, window=50)
    for e in alternating(40, lambda y: 0.2 if y else 0.8):  # prod is confidently wrong
        learner.learn_one(e)
    tripwire = learner.report()["tripwire"]
    assert tripwire["alert"] is True
    assert tripwire["prod"] == pytest.approx(-math.log(0.2))  # every example costs -log(0.2)
    assert tripwire["baseline"] == pytest.approx(math.log(2.0))


def test_the_tripwire_stays_quiet_when_prod_is_better() -> None:
    learner = make(min_count=20, window=50)
    for e in alternating(19, lambda y: 0.8 if y else 0.2):
        learner.learn_one(e)
    assert learner.report()["tripwire"]["reason"].startswith("not enough data")
    for e in alternating(40, lambda y: 0.8 if y else 0.2)[19:]:
        learner.learn_one(e)
    tripwire = learner.report()["tripwire"]
    assert tripwire["alert"] is False
    assert tripwire["prod"] == pytest.approx(-math.log(0.8))


def test_no_tripwire_without_a_baseline() -> None:
    learner = make(names=("prod",))
    learner.learn_one(example("r1", 1))
    tripwire = learner.report()["tripwire"]
    assert tripwire["alert"] is False and "no baseline model" in tripwire["reason"]


def experiment(broken: bool, seed: int = 3, n: int = 1200) -> dict[str, Any]:
    """Arms A and B, 400 users split at random; B serves the baseline, which is broken (says 0.9) if ``broken``."""
    rng = random.Random(seed)
    learner = make(window=100)
    arm_of = {u: "AB"[rng.random() < 0.5] for u in range(400)}
    for i in range(n):
        user = rng.randrange(400)
        p = rng.uniform(0.05, 0.3)
        y = int(rng.random() < p)
        arm = arm_of[user]
        e = example(f"r{i}", y, prod=p, baseline=0.9 if broken else p, arm=arm,
                    served="baseline" if arm == "B" else "prod", user_id=f"u{user}")
        learner.learn_one(e)
    return learner.report()


def test_a_a_experiment_flags_nothing() -> None:
    report = experiment(broken=False)
    assert report["experiment"]["A"]["n"] + report["experiment"]["B"]["n"] == 1200
    [comparison] = report["comparisons"]
    assert (comparison["a"], comparison["b"]) == ("A", "B")
    assert comparison["significant"] is False
    assert comparison["logloss"]["low"] < 0.0 < comparison["logloss"]["high"]


def test_a_b_experiment_flags_the_broken_arm() -> None:
    report = experiment(broken=True)
    [comparison] = report["comparisons"]
    assert comparison["significant"] is True
    assert comparison["logloss"]["low"] > 0.5  # B's log loss is far worse: -log(0.1) on every negative
    assert report["experiment"]["B"]["logloss"] > 1.5
    # The label rate depends on the users only, not on the served model.
    assert comparison["label_rate"]["low"] < 0.0 < comparison["label_rate"]["high"]


def test_negative_subsampling_learns_every_positive_and_a_hashed_share_of_negatives_weighted_up() -> None:
    data = stream(2000)
    full = make()
    sampled = Learner(["prod", "baseline"], snapshot_every=1000, key=KEY, metrics_window=100,
                      tripwire=Tripwire(min_count=1), negative_rate=0.25)
    for e in data:
        full.learn_one(e)
        sampled.learn_one(e)
    negatives = sum(1 for e in data if not e["y"])
    # Every example counts in the metrics, learned from or not: they judge the scores served, not the learning.
    assert sampled.examples == full.examples == len(data)
    assert sampled.report()["models"] == full.report()["models"]
    kept = negatives - sampled.negatives_skipped
    assert 0.2 * negatives < kept < 0.3 * negatives, (kept, negatives)
    # Which ones is a hash of the example's key: the same for a second learner, and after a checkpoint.
    again = Learner(["prod", "baseline"], snapshot_every=1000, key=KEY, metrics_window=100,
                    tripwire=Tripwire(min_count=1), negative_rate=0.25)
    for e in data[:1000]:
        again.learn_one(e)
    restored = Learner.from_checkpoint(again.checkpoint(), key=KEY)
    assert restored.negative_rate == 0.25
    for e in data[1000:]:
        restored.learn_one(e)
    assert restored.negatives_skipped == sampled.negatives_skipped
    probes = [e["x"] for e in data[:50]]
    assert ([restored.models["prod"].predict_proba_one(x)[True] for x in probes]
            == [sampled.models["prod"].predict_proba_one(x)[True] for x in probes])
    # The kept negatives weigh 1/rate: the baseline's click rate estimate stays unbiased.
    probe: dict[Hashable, Any] = {"f": 0.0, "g": 0.0, "cand_position": 0.0}
    p_full = full.models["baseline"].predict_proba_one(probe)[True]
    p_sampled = sampled.models["baseline"].predict_proba_one(probe)[True]
    assert abs(p_sampled - p_full) < 0.05, (p_sampled, p_full)
    unweighted_rate = sum(e["y"] for e in data) / (len(data) - sampled.negatives_skipped)
    assert abs(p_sampled - unweighted_rate) > 0.1  # what it would say without the weights


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5, math.nan])
def test_a_negative_rate_outside_0_1_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="negative_rate"):
        Learner(["prod"], snapshot_every=10, key=KEY, metrics_window=10, tripwire=Tripwire(), negative_rate=rate)
