"""Item vectors (Prod2Vec-style): the bounded co-occurrence counts, a deterministic factorisation, the trainer's
event-time versions, the point-in-time rule in a replay (and that the parity check catches planted leaks), and
the signed snapshots a worker takes or refuses."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from features.itemvectors import ItemVectorTable
from features.vectorparity import vector_mismatches
from models.cooccurrence import CoOccurrence
from models.itemvectors import ItemVectors, factorise
from models.scorer import Scorer
from models.snapshots import dump_snapshot
from streams.core.counters import Counters
from streams.core.deadletter import Source
from streams.core.processor import Processor
from streams.core.snapshots import SnapshotFeed
from streams.core.vectortrainer import ITEM_VECTORS, ItemVectorTrainer, signed
from streams.replay.driver import ReplayDriver
from streams.settings import Settings
from streams.tools.simulate import simulate

SETTINGS = dataclasses.replace(Settings(), item_vectors=True, item_vectors_every=600.0)
KEY = SETTINGS.snapshot_key.encode()


def _grouped_counts(users: int = 40) -> CoOccurrence:
    counts = CoOccurrence(window=3)
    for user in range(users):
        group = ("a", "b", "c", "d") if user % 2 else ("w", "x", "y", "z")
        for step in range(8):
            counts.observe(f"u{user}", group[(user + step) % 4])
    return counts


def test_co_occurrence_stays_within_its_bounds() -> None:
    counts = CoOccurrence(window=4, max_users=10, max_items=50, max_pairs=200)
    for i in range(5000):
        counts.observe(f"u{i % 37}", f"i{(i * 7919) % 301}")
    assert len(counts._recent) <= 10
    assert len(counts.items) <= 50
    assert len(counts.pairs) <= 200
    assert all(a in counts.items and b in counts.items for a, b in counts.pairs)


def test_the_factorisation_puts_items_browsed_together_together_and_is_deterministic() -> None:
    vectors = factorise(_grouped_counts(), dim=4, max_items=100, version=1, trained_until=0.0)
    assert vectors.similarity("a", "b") > 0.9 and vectors.similarity("w", "z") > 0.9
    assert abs(vectors.similarity("a", "w")) < 0.1
    again = factorise(_grouped_counts(), dim=4, max_items=100, version=1, trained_until=0.0)
    assert again.matrix.tobytes() == vectors.matrix.tobytes()
    norms = np.linalg.norm(vectors.matrix, axis=1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-4)


@pytest.mark.parametrize("pairs", [[], [("u1", "a"), ("u2", "b")]], ids=["empty", "no-pair"])
def test_the_factorisation_of_nothing_to_place_gives_zero_vectors(pairs: list[tuple[str, str]]) -> None:
    counts = CoOccurrence()
    for user, item in pairs * 3:
        counts.observe(user, item)
    vectors = factorise(counts, dim=4, max_items=10, version=1, trained_until=0.0)
    assert not vectors.matrix.any()


def _view(i: int, ts: float, user: str = "u", item: str = "a") -> tuple[bytes, Source]:
    raw = b'{"event_id":"e%d","user_id":"%s","ts":%r,"type":"view","item_id":"%s"}' % (i, user.encode(), ts,
                                                                                     item.encode())
    return raw, Source("events", 0, i)


def test_the_trainer_makes_a_version_at_each_boundary_before_the_event_there_counts() -> None:
    trainer = ItemVectorTrainer.from_settings(SETTINGS)
    made = [v.trained_until for i, ts in enumerate([10.0, 500.0, 599.0, 600.0, 1150.0, 1900.0, 2500.0])
            for v in trainer.offer(*_view(i, ts, f"u{i % 2}", "ab"[i % 2]))]
    assert made == [600.0, 1800.0, 2400.0]  # 1150 -> 1900 passes two boundaries: one version, at the last
    assert trainer.counters.snapshot()["item_vectors_events"] == 7


def test_the_trainer_skips_what_the_worker_refuses_and_what_it_read_before() -> None:
    trainer = ItemVectorTrainer.from_settings(SETTINGS)
    for i in range(5):
        trainer.offer(*_view(i, 100.0 + i))
    trainer.offer(*_view(2, 102.0))  # read again after a reconnect
    trainer.offer(b"not json", Source("events", 0, 5))
    trainer.offer(*_view(6, 10.0 ** 10))  # a time no clock takes: held, then refuted
    for i in range(7, 10):
        trainer.offer(*_view(i, 110.0 + i))
    counters = trainer.counters.snapshot()
    assert counters["item_vectors_events"] == 8
    assert counters["item_vectors_events_refused"] == 2
    assert trainer.boundary == 600.0


def _replay(settings: Settings, events: list[dict[str, Any]], processor: Processor | None = None) -> ReplayDriver:
    driver = ReplayDriver(settings, processor, learn=True)
    driver.pipe_all(events)
    driver.finish()
    return driver


def test_a_replay_logs_vector_features_by_the_point_in_time_rule() -> None:
    events, _ = simulate(users=40, events=3000, seed=3)
    log = _replay(SETTINGS, events).read("feature-log")
    versions = [r["item_vectors"] for r in log]
    assert versions[0] == 0 and len(set(versions)) > 3, "the replay did not move through several versions"
    assert all(v <= r["ts"] for v, r in zip(versions, log, strict=True))
    assert sum(("xvec_sim" in f["x"]) for r in log for f in r["features"]) > 1000, "the check would prove little"
    assert vector_mismatches(events, log, SETTINGS) == []


def test_the_parity_check_catches_vectors_trained_on_the_future() -> None:
    events, _ = simulate(users=40, events=3000, seed=3)
    start = events[0]["ts"]
    counts = CoOccurrence(window=SETTINGS.item_vectors_window)
    for e in events:  # every event of the log, shipped as if trained before the first
        if e["type"] in ("view", "add_to_cart"):
            counts.observe(e["user_id"], e["item_id"])
    leak = factorise(counts, dim=SETTINGS.item_vectors_dim, max_items=SETTINGS.item_vectors_items,
                     version=int(start), trained_until=float(int(start)))
    processor = Processor.default(SETTINGS)
    assert processor.item_vectors is not None
    processor.item_vectors.offer(leak)
    log = _replay(dataclasses.replace(SETTINGS, item_vectors_every=10.0 ** 6), events, processor).read("feature-log")
    mismatches = vector_mismatches(events, log, SETTINGS)
    assert len(mismatches) > 100, f"planted leak not caught: {len(mismatches)} mismatches"


def test_the_parity_check_catches_a_version_used_before_its_time() -> None:
    events, _ = simulate(users=40, events=3000, seed=3)
    log = _replay(SETTINGS, events).read("feature-log")
    late = next(r for r in log if r["item_vectors"])
    planted = [*log, {**late, "item_vectors": int(late["ts"]) + 600}]
    assert len(vector_mismatches(events, planted, SETTINGS)) == 1


def test_the_table_serves_the_newest_version_a_request_may_use() -> None:
    table = ItemVectorTable()
    for until in (600.0, 1200.0, 1800.0, 2400.0):
        assert table.offer(ItemVectors(int(until), until, ("a",), np.ones((1, 2))))
    assert not table.offer(ItemVectors(1200, 1200.0, ("a",), np.ones((1, 2))))  # read again: stale
    used = [table.at(ts) for ts in (1199.0, 1800.0, 5000.0)]
    assert [None if v is None else v.version for v in used] == [None, 1800, 2400]


@pytest.fixture
def feed() -> SnapshotFeed:
    return SnapshotFeed(Scorer.fresh(["prod"]), KEY, Counters(), ItemVectorTable())


def test_a_worker_takes_signed_vectors_and_refuses_others(feed: SnapshotFeed) -> None:
    vectors = factorise(_grouped_counts(), dim=4, max_items=100, version=600, trained_until=600.0)
    blob = signed(vectors, KEY)
    assert feed.apply_one(ITEM_VECTORS, blob[:-1] + bytes([blob[-1] ^ 1])) == "refused"
    assert feed.apply_one(ITEM_VECTORS, signed(vectors, b"another key")) == "refused"
    not_vectors = dump_snapshot({"a": [1.0]}, name=ITEM_VECTORS, version=700, key=KEY)
    assert feed.apply_one(ITEM_VECTORS, not_vectors) == "refused"
    assert feed.apply_one(ITEM_VECTORS, blob) == "swapped"
    assert feed.apply_one(ITEM_VECTORS, blob) == "stale"
    assert feed.item_vectors is not None and feed.item_vectors.version == 600
    assert feed.scorer.versions == {"prod": 0}


def test_off_means_no_vector_features_and_no_version_in_the_log() -> None:
    events, _ = simulate(users=10, events=400, seed=3)
    log = _replay(dataclasses.replace(SETTINGS, item_vectors=False), events).read("feature-log")
    assert log and all("item_vectors" not in r for r in log)
    assert not any(k.startswith("xvec_") for r in log for f in r["features"] for k in f["x"])
