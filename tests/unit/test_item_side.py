"""Item-side signals: the visibility rule, the item table's order independence and bounds, the deltas, the item
contract suite (and that it catches a planted leak), the item baseline and the feed's handling of bad records."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Hashable
from typing import Any

import orjson
import pytest

from features.checks import ITEM_CHECKS, check_item_point_in_time
from features.itemparity import item_mismatches
from features.itemstats import ALL, BadDelta, ItemStats, impression_delta, item_keys, label_delta, request_item_keys
from models.registry import build
from streams.core.deadletter import Source
from streams.core.itemside import ItemSide
from streams.core.processor import Processor
from streams.core.statecache import StateCache
from streams.events import Request
from streams.replay.driver import ReplayDriver
from streams.settings import Settings
from streams.tools.simulate import simulate

SETTINGS = Settings()


@pytest.mark.parametrize("check", ITEM_CHECKS, ids=lambda check: check.__name__)
def test_item_contract(check: Any) -> None:
    check()


def test_a_delta_counts_from_its_time_plus_the_lag_never_before() -> None:
    stats = ItemStats(lag=60.0, half_life=math.inf, max_keys=10)
    stats.apply(impression_delta("i:r1", 100.0, [["item=a"]], 60.0))
    stats.apply(label_delta("l:c1", 120.0, ["item=a"], 60.0))
    seen = []
    for ts in (100.0, 159.9, 160.0, 179.9, 180.0):
        stats.advance(ts)
        seen.append(stats.lookup("item=a", ts))
    assert seen == [(0.0, 0.0), (0.0, 0.0), (1.0, 0.0), (1.0, 0.0), (1.0, 1.0)]
    assert stats.late == 0


def _deltas(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = 1000.0 + rng.uniform(0, 5000)
        keys = [f"item={rng.randrange(20)}", f"ctx_os={rng.randrange(3)}"]
        out.append(impression_delta(f"i:{i}", ts, [keys], 60.0) if rng.random() < 0.8
                   else label_delta(f"l:{i}", ts, keys, 60.0))
    return out


def _table(deltas: list[bytes], times: list[float]) -> dict[str, tuple[float, float]]:
    stats = ItemStats(lag=60.0, half_life=3600.0, max_keys=1000)
    for blob in deltas:
        stats.apply(blob)
    for ts in times:
        stats.advance(ts)
    return {key: stats.lookup(key, times[-1]) for key in sorted(stats._table)}


def test_the_table_is_the_same_floats_whatever_order_the_deltas_arrive_in() -> None:
    """Live, deltas from many workers interleave differently on every worker: the table must not care."""
    deltas = _deltas(400, seed=1)
    shuffled = deltas[:]
    random.Random(2).shuffle(shuffled)
    times = [2000.0, 4000.0, 7000.0]
    assert _table(deltas, times) == _table(shuffled, times)


def test_a_redelivered_delta_counts_once_and_a_late_one_is_counted_as_late() -> None:
    stats = ItemStats(lag=60.0, half_life=math.inf, max_keys=10)
    blob = impression_delta("i:r1", 100.0, [["item=a"]], 60.0)
    stats.apply(blob)
    stats.apply(blob)
    stats.advance(1000.0)
    assert stats.lookup("item=a", 1000.0) == (1.0, 0.0) and stats.duplicates == 1
    assert stats.apply(impression_delta("i:r2", 500.0, [["item=a"]], 60.0)) == pytest.approx(440.0)
    assert stats.late == 1 and stats.lateness == pytest.approx(440.0)
    assert stats.lookup("item=a", 1000.0) == (2.0, 0.0)


def test_the_table_keeps_at_most_max_keys_the_least_recently_updated_go() -> None:
    stats = ItemStats(lag=0.0, half_life=math.inf, max_keys=3)
    for i, key in enumerate(["item=a", "item=b", "item=c", "item=a", "item=d"]):
        stats.apply(impression_delta(f"i:{i}", float(i), [[key]], 0.0))
        stats.advance(float(i))
    assert sorted(stats._table) == ["item=a", "item=c", "item=d"] and stats.evicted == 1


@pytest.mark.parametrize("blob", [b"not json", b"[]", b'{"id": 1, "v": 2, "d": []}', b'{"id": "x", "v": "soon"}',
                                  b'{"id": "x", "v": 1, "d": [["k", 1]]}', b'{"id": "x", "v": NaN, "d": []}'])
def test_a_malformed_delta_is_refused_and_changes_nothing(blob: bytes) -> None:
    stats = ItemStats(lag=0.0, half_life=1.0, max_keys=3)
    with pytest.raises(BadDelta):
        stats.apply(blob)
    assert len(stats) == 0 and stats._waiting == [] and len(stats._seen) == 0


def test_a_label_counts_under_the_keys_of_its_impression() -> None:
    """The impression's keys come from the request, the label's from the logged vector: they must agree."""
    events, _ = simulate(users=20, events=600, seed=2)
    driver = ReplayDriver(SETTINGS)
    driver.pipe_all(events)
    for record in driver.read("feature-log"):
        request = next(e for e in events if e.get("request_id") == record["request_id"] and e["type"] == "request")
        attrs = [{k: v for k, v in c.items() if k != "item_id"} for c in request["candidates"]]
        from_request = request_item_keys([c["item_id"] for c in request["candidates"]], record["features"][0]["x"],
                                         attrs)
        assert from_request == [item_keys(f["item_id"], f["x"]) for f in record["features"]]
        assert all(len(k) == 3 for k in from_request)  # the item, the device, the category


def test_every_impression_and_label_becomes_a_delta_and_the_global_key_counts_them_all() -> None:
    events, truth = simulate(users=30, events=1500, seed=3)
    driver = ReplayDriver(SETTINGS)
    driver.pipe_all(events)
    driver.finish()
    deltas = driver.read("item-deltas")
    impressions = [d for d in deltas if d["id"].startswith("i:")]
    labels = [d for d in deltas if d["id"].startswith("l:")]
    assert len(impressions) == truth["counts"]["request"] and len(labels) == truth["counts"]["click"]
    assert driver.processor.items is not None
    stats = driver.processor.items.stats
    stats.advance(1e12)
    total = sum(row[1] for d in impressions for row in d["d"] if row[0] == ALL)
    assert total == truth["oracle"]["n"]
    assert stats.late == 0


class LeakyItemSide(ItemSide):
    """A planted leak: the table is read as of the end of the request's attribution window."""

    def extend(self, vectors: list[dict[str, float]], request: Request) -> list[list[str]]:
        self.stats.advance(request.ts + 900.0)
        return super().extend(vectors, request)


class OwnImpressionItemSide(ItemSide):
    """A planted leak: the request's own impression counts in its own vector."""

    def extend(self, vectors: list[dict[str, float]], request: Request) -> list[list[str]]:
        keys = request_item_keys([c.item_id for c in request.candidates], vectors[0] if vectors else {},
                                 [c.attrs for c in request.candidates])
        self.stats.apply(impression_delta(f"i:{request.request_id}", request.ts, [[*k, ALL] for k in keys], 0.0))
        return super().extend(vectors, request)


@pytest.mark.parametrize("leaky", [LeakyItemSide, OwnImpressionItemSide])
def test_the_item_contract_catches_a_planted_leak(leaky: type[ItemSide]) -> None:
    def factory(settings: Settings) -> Processor:
        processor = Processor.default(settings)
        processor.items = leaky(processor.items.stats, processor.items.signals)  # type: ignore[union-attr]
        return processor

    with pytest.raises(AssertionError, match="break the visibility rule"):
        check_item_point_in_time(factory)


def test_replays_of_a_log_with_many_partitions_keep_the_rule() -> None:
    """A recording read partition by partition: one item table, the rule by each request's time."""
    events, _ = simulate(users=30, events=1200, seed=8)
    driver = ReplayDriver(SETTINGS)
    for offset, event in enumerate(events):
        driver.pipe(event, partition=hash(event["user_id"]) % 3, offset=offset)
    driver.finish()
    assert item_mismatches(events, driver.read("feature-log"), SETTINGS) == []


def test_item_features_off_gives_no_item_side_and_no_deltas() -> None:
    settings = dataclasses.replace(SETTINGS, item_features=False)
    events, _ = simulate(users=10, events=300, seed=5)
    driver = ReplayDriver(settings)
    driver.pipe_all(events)
    assert driver.processor.items is None and "item-deltas" not in driver.outputs
    assert not any(k.startswith("xitem_") for r in driver.read("feature-log") for f in r["features"] for k in f["x"])


def test_the_baseline_is_the_item_rate_unless_the_setting_says_position() -> None:
    x: dict[Hashable, Any] = {"xitem_rate": 0.3, "cand_position": 0.0}
    assert build("baseline").predict_proba_one(x)[True] == 0.3
    position = build("baseline", baseline="position_ctr")
    assert position.predict_proba_one(x)[True] == pytest.approx(0.1)  # the prior of an unseen position
    scorer = Processor.default(dataclasses.replace(SETTINGS, baseline="position_ctr")).scorer
    assert type(scorer.models["baseline"].model).__name__ == "SmoothedCTR"


def test_the_item_baseline_is_not_blind_on_one_candidate_requests() -> None:
    """talkingdata's shape: one candidate per request; the position CTR gives every request the same score."""
    events = []
    for i in range(400):
        app = "good" if i % 2 else "bad"
        events.append({"event_id": f"r{i}", "user_id": f"u{i}", "ts": 1000.0 + 100 * i, "type": "request",
                       "request_id": f"r{i}", "candidates": [app]})
        if app == "good" and i % 4 == 1:
            events.append({"event_id": f"c{i}", "user_id": f"u{i}", "ts": 1010.0 + 100 * i, "type": "click",
                           "request_id": f"r{i}", "item_id": app})
    driver = ReplayDriver(dataclasses.replace(SETTINGS, models="prod,baseline,position_ctr"), learn=True)
    driver.pipe_all(events)
    driver.finish()
    models = driver.report()["models"]
    assert models["position_ctr"]["cumulative"]["auc"] == pytest.approx(0.5, abs=0.05)
    assert models["baseline"]["cumulative"]["auc"] > 0.7


def test_a_bad_record_on_the_feed_is_dead_lettered_with_a_reason_and_counted() -> None:
    from streams.worker.items import ItemFeed

    processor = Processor.default(SETTINGS)
    assert processor.items is not None
    processor.items.origin = "me"
    sent: list[tuple[bytes, str, Source]] = []
    feed = ItemFeed(processor, lambda raw, reason, source: sent.append((raw, reason, source)))
    feed.apply_one(b"garbage", Source("item-deltas", 0, 7, b"k"))
    feed.apply_one(impression_delta("i:r1", 10.0, [["item=a"]], 60.0, "other"), Source("item-deltas", 0, 8, b"r1"))
    processor.items.stats.advance(1000.0)
    feed.apply_one(impression_delta("i:r2", 10.0, [["item=a"]], 60.0, "other"), Source("item-deltas", 0, 9, b"r2"))
    # its own deltas come back from the topic: applied already when made, skipped
    feed.apply_one(impression_delta("i:r3", 10.0, [["item=a"]], 60.0, "me"), Source("item-deltas", 0, 10, b"r3"))
    assert processor.items.stats.lookup("item=a", 1000.0)[0] == pytest.approx(2.0 * 0.5 ** (930 / 86400))
    assert [(raw, source.offset) for raw, _, source in sent] == [(b"garbage", 7)]
    assert "item delta" in sent[0][1]
    counts = processor.counters.snapshot()
    assert counts["dead_letter.bad_item_delta"] == 1 and counts["item_deltas_received"] == 2
    assert counts["item_deltas_late"] == 1
    assert processor.timings.stages["item_visibility"].max == pytest.approx(930.0)


def test_deltas_are_json_with_their_natural_id() -> None:
    record = orjson.loads(impression_delta("i:r1", 5.0, [["item=a", ALL], ["item=b", ALL]], 60.0))
    assert record == {"id": "i:r1", "v": 65.0, "d": [["item=a", 1, 0], [ALL, 2, 0], ["item=b", 1, 0]], "o": ""}


def test_a_worker_alone_sees_what_the_replay_sees_whatever_the_topic_does() -> None:
    """The processor applies its own deltas when it makes them: one worker needs no round trip through Kafka."""
    events, _ = simulate(users=25, events=900, seed=11)
    replay = ReplayDriver(SETTINGS)
    replay.pipe_all(events)
    worker = Processor.default(SETTINGS)
    states = StateCache(lambda user_id: None)
    outputs = [out for offset, event in enumerate(events)
               for out in worker.process_one(orjson.dumps(event), Source("replay", -1, offset), states)]
    # (the deltas it sent are never fed back here: a topic that delivers nothing, or late, changes nothing)
    assert [o.value for o in outputs if o.topic == "feature-log"] == [o.value for o in replay.outputs["feature-log"]]


def test_an_event_that_fails_leaves_no_delta_in_the_table() -> None:
    """A bug costs the event (dead-lettered) and every trace of it, its item deltas too."""
    processor = Processor.default(SETTINGS)
    assert processor.items is not None
    broken = processor.features

    class Boom(Exception):
        pass

    def fail(*args: Any, **kwargs: Any) -> None:
        raise Boom("update failed")

    states = StateCache(lambda user_id: None)
    raw = orjson.dumps({"event_id": "e1", "user_id": "u", "ts": 10.0, "type": "request", "request_id": "r1",
                        "candidates": ["a"]})
    original, broken.update = broken.update, fail  # type: ignore[method-assign]
    out = processor.process_one(raw, Source("events", 0, 0), states)
    broken.update = original  # type: ignore[method-assign]
    assert [o.topic for o in out] == ["dead-letter"]
    # the next event goes through: its deltas count, and nothing of the failed one comes with them
    good = orjson.dumps({"event_id": "e2", "user_id": "v", "ts": 20.0, "type": "request", "request_id": "r2",
                         "candidates": ["b"]})
    assert "item-deltas" in [o.topic for o in processor.process_one(good, Source("events", 0, 1), states)]
    processor.items.stats.advance(1000.0)
    assert processor.items.stats.lookup("item=a", 1000.0) == (0.0, 0.0)
    assert processor.items.stats.lookup("item=b", 1000.0)[0] > 0.9
