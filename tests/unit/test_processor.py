"""Unit tests of streams.core.processor and streams.replay.driver: outputs, dead letters, redelivery, lateness,
replay."""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson
import pytest

from features.base import Feature, UserFeature, Vector
from features.builtin import Activity, ItemInteractions
from features.featureset import FeatureSet, default_features
from features.state import encode_state
from models.scorer import Scorer
from streams.core.deadletter import Source
from streams.core.processor import Processor
from streams.core.records import Output
from streams.core.statecache import StateCache
from streams.events import Event, Request
from streams.replay.driver import ReplayDriver
from streams.settings import Settings
from streams.tools.simulate import simulate

SETTINGS = Settings(learn_from="wait")  # allowed_lateness 60 s, max_candidates 500; fnw: tests/unit/test_fnw.py


def raw(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def view(event_id: str, user: str, ts: float, item: str = "a") -> bytes:
    return raw(event_id=event_id, user_id=user, ts=ts, type="view", item_id=item)


def request(event_id: str, user: str, ts: float, candidates: list[Any], request_id: str = "r1",
            **more: Any) -> bytes:
    return raw(event_id=event_id, user_id=user, ts=ts, type="request", request_id=request_id,
               candidates=candidates, **more)


def src(offset: int, partition: int = 0, key: bytes | None = None) -> Source:
    return Source("events", partition, offset, key)


def small_processor(*features: Feature) -> Processor:
    return Processor(SETTINGS, FeatureSet(list(features) or [Activity(), ItemInteractions()]),
                     Scorer.fresh(["prod"]))


# ------------------------------------------------------------------------------------------------ outputs


def test_request_gives_one_score_record_and_one_feature_log_record() -> None:
    p = Processor.default(SETTINGS)
    states = StateCache(lambda user_id: None)
    assert p.process_one(view("e1", "u1", 100.0, "b"), src(0), states) == []
    out = p.process_one(request("e2", "u1", 160.0, ["c", {"item_id": "b", "price": 1.0}, "a"],
                                context={"device": "tv"}), src(1), states)
    # and the request's impressions for the item table, keyed by request (docs/items.md)
    assert [(o.topic, o.key) for o in out] == [("scores", b"u1"), ("feature-log", b"u1"), ("item-deltas", b"r1")]
    scores, flog = (orjson.loads(o.value) for o in out[:2])
    assert scores == {
        "request_id": "r1", "user_id": "u1", "ts": 160.0,
        "scores": [{"item_id": "c", "score": 0.01}, {"item_id": "b", "score": 0.01}, {"item_id": "a", "score": 0.01}],
        "arm": "A", "model": "prod", "model_version": 0,  # untrained: the item rate, here the global prior of 1 %
    }
    assert sorted(flog) == ["arm", "features", "model_versions", "request_id", "schema", "scores", "ts", "user_id"]
    assert flog["request_id"] == "r1" and flog["user_id"] == "u1" and flog["ts"] == 160.0 and flog["arm"] == "A"
    # Every model scores (shadow): the baseline is the item rate, here the global prior too.
    assert flog["scores"] == {"prod": [0.01, 0.01, 0.01], "baseline": [0.01, 0.01, 0.01]}
    assert flog["model_versions"] == {"prod": 0, "baseline": 0}
    assert flog["schema"] == p.features.fingerprint != FeatureSet.default(SETTINGS.user_ttl).fingerprint
    assert [f["item_id"] for f in flog["features"]] == ["c", "b", "a"]
    xc, xb, xa = (f["x"] for f in flog["features"])
    # as of just before the request: one view, of b, 60 s earlier
    for x in (xc, xb, xa):
        assert x["activity_events"] == 1.0
        assert x["activity_log_secs_since_last"] == pytest.approx(math.log(61.0))
        assert x["count_view"] == 1.0 and "count_request" not in x
        assert x["ctx_device=tv"] == 1.0
    assert [x["cand_position"] for x in (xc, xb, xa)] == [0.0, 1.0, 2.0]
    assert (xc["item_seen"], xb["item_seen"], xa["item_seen"]) == (0.0, 1.0, 0.0)
    assert xb["cand_price"] == 1.0 and xb["cand_log_price"] == 0.0 and "cand_price" not in xc
    assert p.counters.snapshot() == {"events_in": 2, "requests_scored": 1}


def test_feature_log_vector_excludes_the_request_itself() -> None:
    p = small_processor(Activity())
    states = StateCache(lambda user_id: None)
    first = p.process_one(request("e1", "u1", 10.0, ["a"]), src(0), states)
    second = p.process_one(request("e2", "u1", 20.0, ["a"], request_id="r2"), src(1), states)
    assert orjson.loads(first[1].value)["features"][0]["x"] == {"activity_events": 0.0}
    assert orjson.loads(second[1].value)["features"][0]["x"] == {
        "activity_events": 1.0, "activity_log_secs_since_last": pytest.approx(math.log(11.0))}
    assert states.get("u1")["activity"] == [2, 20.0]


def test_non_request_events_update_state_and_mark_the_user_dirty() -> None:
    p = small_processor()
    states = StateCache(lambda user_id: None)
    p.process_one(view("e1", "u2", 5.0, "z"), src(7), states)
    p.process_one(view("e2", "u1", 6.0, "y"), src(8), states)
    dirty = dict(states.dirty())
    assert list(dirty) == ["u1", "u2"]
    assert orjson.loads(dirty["u2"]) == {"activity": [1, 5.0], "item": {"z": [1, 5.0]}, "_ts": 5.0, "_pos": 7}


# ------------------------------------------------------------------------------------------- dead letters


@pytest.mark.parametrize(
    ("payload", "key", "code"),
    [
        (b"oops", None, "not_json"),
        (b"[1, 2]", None, "not_object"),
        (raw(event_id="e1", user_id="u1", ts=5, type="request", request_id="r1"), None, "invalid"),
        (view("e1", "u1", 5.0), b"u2", "key_mismatch"),
        (view("e1", "u1", 5.0), b"", "key_missing"),
    ],
)
def test_invalid_input_gives_one_dead_letter(payload: bytes, key: bytes | None, code: str) -> None:
    p = small_processor()
    states = StateCache(lambda user_id: None)
    out = p.process_one(payload, Source("events", 3, 41, key), states)
    assert len(out) == 1
    assert out[0].topic == "dead-letter" and out[0].key is None
    record = orjson.loads(out[0].value)
    assert record["code"] == code
    assert (record["topic"], record["partition"], record["offset"]) == ("events", 3, 41)
    assert record["raw"] == payload.decode() and record["raw_encoding"] == "utf-8"
    assert record["key"] == (None if key is None else key.decode())
    assert record["error"]
    assert p.counters.snapshot() == {"events_in": 1, "dead_letter": 1, f"dead_letter.{code}": 1}
    assert states.dirty() == []
    assert p.max_ts == {}


def test_dead_letter_counters_add_up_per_code() -> None:
    p = small_processor()
    states = StateCache(lambda user_id: None)
    for i, payload in enumerate([b"x", b"y", b"3", view("e1", "u1", 1.0)]):
        p.process_one(payload, src(i), states)
    assert p.counters.snapshot() == {"events_in": 4, "dead_letter": 3, "dead_letter.not_json": 2,
                                     "dead_letter.not_object": 1}


class Boom(UserFeature):
    """A feature with a bug: its values raise."""

    name = "boom"

    def values(self, slot: Any, request: Request) -> Vector:
        raise RuntimeError("kaboom")


class BoomOnUpdate(UserFeature):
    """A feature with a bug: its update raises on views of item 'bad'."""

    name = "boom_update"
    reads = frozenset({"*"})

    def update(self, slot: Any, event: Event) -> Any:
        if getattr(event, "item_id", None) == "bad":
            raise ZeroDivisionError("division by zero")
        return (slot or 0) + 1

    def values(self, slot: Any, request: Request) -> Vector:
        return {}


def test_exception_in_feature_values_is_dead_lettered_as_internal(caplog: pytest.LogCaptureFixture) -> None:
    p = small_processor(Activity(), Boom())
    states = StateCache(lambda user_id: None)
    payload = request("e1", "u1", 10.0, ["a"])
    with caplog.at_level(logging.CRITICAL, logger="streams.core.processor"):
        out = p.process_one(payload, src(4), states)  # does not raise
    assert len(out) == 1 and out[0].topic == "dead-letter"
    record = orjson.loads(out[0].value)
    assert record["code"] == "internal"
    assert record["error"] == "internal error: RuntimeError: kaboom"
    assert record["offset"] == 4 and record["raw"] == payload.decode()
    assert p.counters.snapshot() == {"events_in": 1, "dead_letter": 1, "dead_letter.internal": 1}
    # the failed request did not reach the state; other events of the user still work
    assert states.dirty() == []
    assert p.process_one(view("e2", "u1", 11.0), src(5), states) == []
    assert states.get("u1")["activity"] == [1, 11.0]


def test_exception_in_feature_update_is_dead_lettered_as_internal(caplog: pytest.LogCaptureFixture) -> None:
    p = small_processor(Activity(), BoomOnUpdate())
    states = StateCache(lambda user_id: None)
    with caplog.at_level(logging.CRITICAL, logger="streams.core.processor"):
        out = p.process_one(view("e1", "u1", 10.0, "bad"), src(0), states)
    assert [orjson.loads(o.value)["code"] for o in out] == ["internal"]
    assert orjson.loads(out[0].value)["error"] == "internal error: ZeroDivisionError: division by zero"
    assert p.counters.get("dead_letter.internal") == 1
    assert states.dirty() == []


def test_failed_event_leaves_no_trace_in_the_state_whatever_the_batching(caplog: pytest.LogCaptureFixture) -> None:
    events = [view("e1", "u1", 10.0, "bad"), view("e2", "u1", 20.0, "good")]

    def run(batches: list[list[int]]) -> dict[str, bytes]:
        p = small_processor(Activity(), BoomOnUpdate())
        store: dict[str, bytes] = {}
        for batch in batches:
            states = StateCache(store.get)
            for i in batch:
                p.process_one(events[i], src(i), states)
            store.update(states.dirty())
        return store

    with caplog.at_level(logging.CRITICAL, logger="streams.core.processor"):
        one_by_one = run([[0], [1]])  # as the replay driver does
        together = run([[0, 1]])  # as a worker's batch does
    # the dead-lettered event must cost that one event: only the good view is counted
    assert orjson.loads(one_by_one["u1"])["activity"] == [1, 20.0]
    assert orjson.loads(together["u1"])["activity"] == [1, 20.0]


def test_a_failed_event_puts_back_a_stored_state_whether_or_not_the_batch_changed_it_before(
        caplog: pytest.LogCaptureFixture) -> None:
    """The rollback copy is the state before the event, whether it is as loaded or changed by the batch."""
    p = small_processor(Activity(), BoomOnUpdate())
    store: dict[str, bytes] = {}
    first = StateCache(store.get)
    p.process_one(view("e1", "u1", 10.0, "good"), src(0), first)
    store.update(first.dirty())
    stored = store["u1"]
    with caplog.at_level(logging.CRITICAL, logger="streams.core.processor"):
        clean = StateCache(store.get)  # first event of a batch: the state is as loaded
        assert [o.topic for o in p.process_one(view("e2", "u1", 20.0, "bad"), src(1), clean)] == ["dead-letter"]
        assert clean.get("u1") == orjson.loads(stored) and clean.dirty() == []
        changed = StateCache(store.get)  # a good event, then a bad one, in one batch
        p.process_one(view("e3", "u1", 30.0, "good"), src(2), changed)
        after_good = orjson.loads(changed.dirty()[0][1])
        p.process_one(view("e4", "u1", 40.0, "bad"), src(3), changed)
        assert changed.get("u1") == after_good and after_good["activity"] == [2, 30.0]


def test_a_failed_event_after_every_default_feature_updated_puts_the_whole_state_back(
        caplog: pytest.LogCaptureFixture) -> None:
    """The undo is a shallow copy of the state: right only because no update changed a slot in place. Every
    default feature updates before the one that fails, on a user with requests waiting and closed."""
    p = small_processor(*default_features(), BoomOnUpdate())
    states = StateCache(lambda user_id: None)
    offset = 0
    for i in range(40):  # 40 views and 8 requests over 6,000 s: the first requests' hour-long windows close
        ts = 10.0 + 150 * i
        for event in (raw(event_id=f"v{i}", user_id="u1", ts=ts, type="view", item_id=f"i{i % 7}",
                          props={"category": f"c{i % 3}"}),
                      *([request(f"e{i}", "u1", ts, [f"i{i % 7}", "x"], request_id=f"r{i}")] if i % 5 == 0 else [])):
            p.process_one(event, src(offset), states)
            offset += 1
    before = orjson.loads(orjson.dumps(states.get("u1")))
    assert {"_pending", "_closed", "item", "item_did", "decayed", "window", "count", "affinity"} <= set(before)
    assert before["affinity"] is not None
    with caplog.at_level(logging.CRITICAL, logger="streams.core.processor"):
        # At the last event's time, so no window closes: the state after must be the state before, whole.
        out = p.process_one(view("bad-view", "u1", ts, "bad"), src(offset), states)
    assert [o.topic for o in out] == ["dead-letter"]
    assert orjson.loads(orjson.dumps(states.get("u1"))) == before


# --------------------------------------------------------------------------------------------- redelivery


def test_redelivery_at_the_same_position_is_skipped() -> None:
    p = small_processor()
    store: dict[str, bytes] = {}
    states = StateCache(store.get)
    req_raw = request("e5", "u1", 50.0, ["a", "b"])
    assert len(p.process_one(req_raw, src(5), states)) == 2
    store.update(states.dirty())
    after_first = dict(store)
    # a crash and restart: the same record is read again, against the state that holds it
    states = StateCache(store.get)
    assert p.process_one(req_raw, src(5), states) == []
    assert p.process_one(view("e3", "u1", 40.0), src(3), states) == []  # older offsets too
    assert states.dirty() == []
    assert p.counters.get("events_redelivered") == 2
    assert p.counters.get("requests_scored") == 1
    # a fresh position is applied
    out = p.process_one(request("e6", "u1", 60.0, ["a"], request_id="r2"), src(6), states)
    assert [o.topic for o in out] == ["scores", "feature-log"]
    store.update(states.dirty())
    assert orjson.loads(after_first["u1"])["activity"] == [1, 50.0]
    assert orjson.loads(store["u1"])["activity"] == [2, 60.0]
    assert orjson.loads(store["u1"])["_pos"] == 6
    assert p.counters.get("events_redelivered") == 2


def test_redelivery_is_per_user() -> None:
    p = small_processor()
    states = StateCache(lambda user_id: None)
    p.process_one(view("e1", "u1", 1.0), src(10), states)
    assert p.process_one(view("e2", "u2", 2.0), src(4), states) == []  # u2 never saw offset 4: applied
    assert states.get("u2")["activity"] == [1, 2.0]
    assert p.counters.get("events_redelivered") == 0


# ------------------------------------------------------------------------------------------------ lateness


def test_late_events_and_max_ts_per_partition() -> None:
    p = small_processor()
    states = StateCache(lambda user_id: None)
    p.process_one(view("e1", "u1", 1000.0), src(0, partition=0), states)
    p.process_one(view("e2", "u1", 940.0), src(1, partition=0), states)  # 60 s behind: on time
    assert p.counters.get("events_late") == 0
    p.process_one(view("e3", "u1", 939.5), src(2, partition=0), states)  # 60.5 s behind: late
    assert p.counters.get("events_late") == 1
    p.process_one(view("e4", "u2", 10.0), src(0, partition=1), states)  # another partition: its own clock
    p.process_one(view("e5", "u2", 5.0), src(1, partition=1), states)
    assert p.counters.get("events_late") == 1
    p.process_one(view("e6", "u1", 1200.0), src(3, partition=0), states)
    p.process_one(view("e7", "u1", 1100.0), src(4, partition=0), states)  # 100 s behind the new max
    assert p.counters.get("events_late") == 2
    assert p.max_ts == {0: 1200.0, 1: 10.0}
    assert states.get("u1")["activity"][0] == 5  # late events are still applied


def test_user_expiry_on_read_counts_users_expired() -> None:
    settings = Settings(user_ttl=100.0)
    p = Processor(settings, FeatureSet([Activity()], settings.user_ttl), Scorer.fresh(["prod"]))
    states = StateCache(lambda user_id: None)
    p.process_one(view("e1", "u1", 1000.0), src(0), states)
    p.process_one(view("e2", "u1", 1100.0), src(1), states)  # exactly the TTL: kept
    assert states.get("u1")["activity"] == [2, 1100.0]
    out = p.process_one(request("e3", "u1", 1200.5, ["a"]), src(2), states)
    assert orjson.loads(out[1].value)["features"][0]["x"] == {"activity_events": 0.0}
    assert states.get("u1")["activity"] == [1, 1200.5]
    assert p.counters.get("users_expired") == 1


# ---------------------------------------------------------------------------------------------- StateCache


def test_state_cache_reads_each_user_once_and_writes_sorted_canonical_bytes() -> None:
    loads: list[str] = []
    stored = {"u2": b'{"b":1,"a":[2,3]}'}

    def load(user_id: str) -> bytes | None:
        loads.append(user_id)
        return stored.get(user_id)

    cache = StateCache(load)
    assert cache.get("u2") == {"b": 1, "a": [2, 3]}
    cache.get("u2")["c"] = 4.5
    assert cache.get("u2") == {"b": 1, "a": [2, 3], "c": 4.5}
    assert cache.get("u1") == {}
    cache.get("u1")["z"] = 1
    assert cache.get("u1") == {"z": 1}  # an unknown user's new state is kept, not reloaded
    cache.get("u3")
    assert loads == ["u2", "u1", "u3"]
    cache.mark_dirty("u2")
    cache.mark_dirty("u1")
    cache.mark_dirty("u2")
    assert cache.dirty() == [("u1", b'{"z":1}'), ("u2", b'{"a":[2,3],"b":1,"c":4.5}')]


# ------------------------------------------------------------------------------------------------- replay


def _outputs(driver: ReplayDriver) -> dict[str, list[tuple[bytes | None, bytes]]]:
    return {topic: [(o.key, o.value) for o in outs] for topic, outs in sorted(driver.outputs.items())}


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    events, _ = simulate(users=25, events=900, seed=11)
    return events


def test_replay_twice_is_byte_identical(stream: list[dict[str, Any]]) -> None:
    a, b = ReplayDriver(SETTINGS), ReplayDriver(SETTINGS)
    a.pipe_all(stream)
    b.pipe_all(stream)
    n_requests = sum(e["type"] == "request" for e in stream)
    assert n_requests > 100
    assert len(a.outputs["scores"]) == len(a.outputs["feature-log"]) == n_requests
    assert "dead-letter" not in a.outputs
    assert _outputs(a) == _outputs(b)
    assert a.states == b.states
    assert a.processor.counters.snapshot() == b.processor.counters.snapshot()


def test_replay_outputs_do_not_depend_on_how_the_stream_is_split(stream: list[dict[str, Any]]) -> None:
    whole = ReplayDriver(SETTINGS)
    whole.pipe_all(stream)
    split = ReplayDriver(SETTINGS)
    i = 0
    for size in [1, 7, 0, 50, 3, 200]:
        split.pipe_all(stream[i:i + size])
        i += size
    for event in stream[i:i + 10]:
        split.pipe(orjson.dumps(event))  # bytes, as read from a file
    split.pipe_all(iter(stream[i + 10:]))
    assert _outputs(whole) == _outputs(split)
    assert whole.states == split.states


@pytest.mark.parametrize("kept", [0, 3, 10_000], ids=["nothing-kept", "few-kept", "all-kept"])
def test_worker_batches_give_the_replay_outputs(stream: list[dict[str, Any]], kept: int) -> None:
    """A worker's state cache lives across batches and drops clean entries beyond its bound: whatever it keeps,
    the outputs and the stored states are the replay's."""
    replay = ReplayDriver(SETTINGS)
    replay.pipe_all(stream)
    p = Processor.default(SETTINGS)
    store: dict[str, bytes] = {}
    pending: dict[str, bytes] = {}
    outputs: list[Output] = []
    states = StateCache(store.get, pending.get, max_clean=kept, max_clean_pending=kept)
    for seq, start in enumerate(range(0, len(stream), 37)):
        for offset in range(start, min(start + 37, len(stream))):
            produced = p.process_one(orjson.dumps(stream[offset]), Source("replay", -1, offset), states)
            for out in produced:  # every worker follows item-deltas into its item table (streams/worker/items.py)
                if out.topic == "item-deltas" and p.items is not None:
                    p.items.apply(out.value)
            outputs.extend(produced)
        for request_id, entry in states.pending.take(seq):  # as the worker's checkpoint writes its pending table
            if entry is None:
                pending.pop(request_id, None)
            else:
                pending[request_id] = entry
        store.update(states.take(seq))
        states.durable(seq)
        assert len(states) <= max(kept, 37)
    for topic in ("scores", "feature-log", "examples"):
        assert [o.value for o in outputs if o.topic == topic] == [o.value for o in replay.outputs[topic]], topic
    assert store == replay.states and pending == replay.pending


def test_replay_states_are_the_encoded_states(stream: list[dict[str, Any]]) -> None:
    driver = ReplayDriver(SETTINGS)
    driver.pipe_all(stream[:50])
    for blob in driver.states.values():
        assert encode_state(orjson.loads(blob)) == blob
    assert driver.position == 50


def test_next_offset_follows_the_records_decided_and_survives_a_restore(stream: list[dict[str, Any]]) -> None:
    """The offset the worker checks each record against (streams/core/gaps.py): after the last one decided,
    including a record dead-lettered undecoded, and the same after the clock is saved and taken back."""
    p = Processor.default(SETTINGS)
    nothing: dict[str, bytes] = {}
    states = StateCache(nothing.get, nothing.get)
    assert p.next_offset(3) is None
    for offset in range(5):
        p.process_one(orjson.dumps(stream[offset]), Source("events", 3, 10 + offset), states)
    p.process_one(b"not json", Source("events", 3, 15), states)
    assert p.next_offset(3) == 16
    record = p.clock_record(3)
    restarted = Processor.default(SETTINGS)
    restarted.restore_clock(3, record)
    assert restarted.next_offset(3) == 16
    restarted.restore_clock(4, None)
    assert restarted.next_offset(4) is None
