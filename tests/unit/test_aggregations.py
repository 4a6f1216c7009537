"""Unit tests of features.aggregations, with hand-computed expectations."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.aggregations import DecayedCount, ItemHistory, Recency, SmoothedRatio, WindowCount


def roundtrip(slot: Any) -> Any:
    return orjson.loads(orjson.dumps(slot))


# --------------------------------------------------------------------------------------------- DecayedCount


def test_decayed_count_one_half_life_halves() -> None:
    dc = DecayedCount(half_life=60.0)
    slot = dc.update(None, ts=1000.0)
    assert slot == [1.0, 1000.0]
    assert dc.value(slot, 1000.0) == 1.0
    assert dc.value(slot, 1060.0) == 0.5
    assert dc.value(slot, 1120.0) == 0.25
    assert dc.value(slot, 1180.0) == 0.125


def test_decayed_count_update_decays_then_adds() -> None:
    dc = DecayedCount(half_life=60.0)
    slot = dc.update(None, ts=0.0, weight=4.0)
    slot = dc.update(slot, ts=120.0)  # 4 -> 1 after two half-lives, + 1
    assert slot == [2.0, 120.0]
    slot = dc.update(slot, ts=120.0, weight=0.5)  # same ts: no decay
    assert slot == [2.5, 120.0]
    assert dc.value(slot, 180.0) == 1.25


def test_decayed_count_out_of_order_adds_decayed_weight_and_keeps_last_ts() -> None:
    dc = DecayedCount(half_life=10.0)
    slot = dc.update(None, ts=100.0)
    slot = dc.update(slot, ts=80.0, weight=8.0)  # two half-lives late: 8 / 4 = 2
    assert slot == [3.0, 100.0]
    # Same events in order: 8 at 80, decayed to 2 at 100, + 1.
    in_order = dc.update(dc.update(None, ts=80.0, weight=8.0), ts=100.0)
    assert in_order == [3.0, 100.0]


def test_decayed_count_value_never_extrapolates_backwards() -> None:
    dc = DecayedCount(half_life=10.0)
    slot = dc.update(None, ts=100.0, weight=2.0)
    assert dc.value(slot, 90.0) == 2.0
    assert dc.value(slot, -1e9) == 2.0
    assert dc.value(None, 100.0) == 0.0


def test_decayed_count_value_is_pure() -> None:
    dc = DecayedCount(half_life=10.0)
    slot = dc.update(None, ts=100.0)
    dc.value(slot, 200.0)
    assert slot == [1.0, 100.0]


def test_decayed_count_rejects_bad_config_and_inputs() -> None:
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="half_life"):
            DecayedCount(half_life=bad)
    dc = DecayedCount(half_life=1.0)
    with pytest.raises(ValueError, match="ts"):
        dc.update(None, ts=math.nan)
    with pytest.raises(ValueError, match="weight"):
        dc.update(None, ts=1.0, weight=math.inf)


events_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False),
        st.floats(min_value=0.0, max_value=100.0, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(events=events_strategy, data=st.data())
def test_decayed_count_order_independent(events: list[tuple[float, float]], data: st.DataObject) -> None:
    dc = DecayedCount(half_life=3600.0)
    shuffled = data.draw(st.permutations(events))
    a = b = None
    for ts, w in events:
        a = dc.update(a, ts, w)
    for ts, w in shuffled:
        b = dc.update(b, ts, w)
    assert a is not None and b is not None
    assert a[1] == b[1] == max(ts for ts, _ in events)
    at = a[1] + 1800.0
    assert dc.value(a, at) == pytest.approx(dc.value(b, at), rel=1e-12, abs=1e-12)


def test_decayed_count_two_orders_same_value() -> None:
    dc = DecayedCount(half_life=7.0)
    events = [(3.0, 1.0), (10.0, 2.0), (5.5, 0.25), (17.25, 1.0), (1.0, 3.0)]
    a = b = None
    for ts, w in events:
        a = dc.update(a, ts, w)
    for ts, w in sorted(events):
        b = dc.update(b, ts, w)
    assert a is not None and b is not None
    assert abs(dc.value(a, 20.0) - dc.value(b, 20.0)) <= 1e-12


# ---------------------------------------------------------------------------------------------- WindowCount


def test_window_count_buckets_aligned_to_width() -> None:
    wc = WindowCount(window=60.0, buckets=6)
    assert wc.width == 10.0
    slot = wc.update(None, ts=1003.0)
    slot = wc.update(slot, ts=1009.999)
    slot = wc.update(slot, ts=1010.0)
    assert slot == [[1000.0, 2], [1010.0, 1]]


def test_window_count_value_expires_bucket_at_exact_event_time() -> None:
    wc = WindowCount(window=60.0, buckets=6)
    slot = wc.update(None, ts=1005.0)  # bucket [1000, 1010): expires at 1060
    slot = wc.update(slot, ts=1015.0)  # bucket [1010, 1020): expires at 1070
    assert wc.value(slot, 1005.0) == 2
    assert wc.value(slot, 1059.999) == 2
    assert wc.value(slot, 1060.0) == 1
    assert wc.value(slot, 1069.999) == 1
    assert wc.value(slot, 1070.0) == 0
    assert wc.value(None, 1070.0) == 0


def test_window_count_update_drops_expired_buckets_at_exact_event_time() -> None:
    wc = WindowCount(window=60.0, buckets=6)
    slot = wc.update(None, ts=1005.0)
    slot = wc.update(slot, ts=1015.0)
    # Just before 1060, bucket 1000 is still in the window.
    before = wc.update(roundtrip(slot), ts=1059.999)
    assert before == [[1000.0, 1], [1010.0, 1], [1050.0, 1]]
    # At 1060 it is dropped.
    at = wc.update(roundtrip(slot), ts=1060.0)
    assert at == [[1010.0, 1], [1060.0, 1]]
    assert wc.value(at, 1060.0) == 2


def test_window_count_late_events() -> None:
    wc = WindowCount(window=60.0, buckets=6)
    slot = wc.update(None, ts=1065.0)  # newest bucket 1060; kept buckets start at 1010
    slot = wc.update(slot, ts=1010.0)  # late, bucket 1010 is in the window: counted
    assert slot == [[1010.0, 1], [1060.0, 1]]
    slot = wc.update(slot, ts=1030.0)  # late, inserted in order
    slot = wc.update(slot, ts=1012.0)  # late, existing bucket
    assert slot == [[1010.0, 2], [1030.0, 1], [1060.0, 1]]
    unchanged = wc.update(slot, ts=1009.999)  # bucket 1000 is out of the window: ignored
    assert unchanged == [[1010.0, 2], [1030.0, 1], [1060.0, 1]]
    assert wc.value(slot, 1065.0) == 4


def test_window_count_value_counts_later_buckets_when_queried_in_the_past() -> None:
    wc = WindowCount(window=60.0, buckets=6)
    slot = wc.update(None, ts=1000.0)
    slot = wc.update(slot, ts=1050.0)
    assert wc.value(slot, 1020.0) == 2  # starts > 1020 - 60: both, even the later one


def test_window_count_single_bucket() -> None:
    wc = WindowCount(window=10.0, buckets=1)
    slot = wc.update(None, ts=3.0)
    slot = wc.update(slot, ts=9.0)
    assert slot == [[0.0, 2]]
    assert wc.value(slot, 9.999) == 2
    assert wc.value(slot, 10.0) == 0
    slot = wc.update(slot, ts=10.0)
    assert slot == [[10.0, 1]]
    assert wc.update(slot, ts=9.0) == [[10.0, 1]]


def test_window_count_negative_ts_floor_alignment() -> None:
    wc = WindowCount(window=20.0, buckets=2)
    slot = wc.update(None, ts=-0.5)
    assert slot == [[-10.0, 1]]


def test_window_count_rejects_bad_config() -> None:
    with pytest.raises(ValueError, match="window"):
        WindowCount(window=0.0, buckets=3)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="buckets"):
            WindowCount(window=10.0, buckets=bad)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=50),
    buckets=st.integers(min_value=1, max_value=8),
    times=st.lists(st.integers(min_value=0, max_value=2000), min_size=1, max_size=60),
)
def test_window_count_bound_and_approximation(width: int, buckets: int, times: list[int]) -> None:
    """At most ``buckets`` sorted entries; the value lies between the exact counts over ``window - width``
    and ``window`` seconds, for every event that was not ignored as too late."""
    window = float(width * buckets)
    wc = WindowCount(window=window, buckets=buckets)
    slot = None
    newest = -math.inf
    accepted: list[float] = []
    for n, t in enumerate(times, start=1):
        ts = float(t)
        newest = max(newest, ts)
        slot = wc.update(slot, ts)
        assert len(slot) <= buckets
        starts = [b[0] for b in slot]
        assert starts == sorted(set(starts))
        if ts > newest - window + width:  # young enough that it can never have been ignored
            accepted.append(ts)
        value = wc.value(slot, newest)
        assert value >= sum(1 for e in accepted if newest - e < window - width)
        assert value <= sum(1 for e in times[:n] if newest - e < window)


# -------------------------------------------------------------------------------------------------- Recency


def test_recency() -> None:
    rec = Recency()
    assert rec.value(None, 10.0) is None
    slot = rec.update(None, 100.0)
    assert slot == 100.0
    assert rec.update(slot, 50.0) == 100.0
    slot = rec.update(slot, 130.0)
    assert rec.value(slot, 130.0) == 0.0
    assert rec.value(slot, 145.5) == 15.5
    assert rec.value(slot, 120.0) == 0.0
    with pytest.raises(ValueError, match="ts"):
        rec.update(slot, math.inf)


# --------------------------------------------------------------------------------------------- SmoothedRatio


def test_smoothed_ratio() -> None:
    r = SmoothedRatio(prior_mean=0.25, prior_weight=4.0)
    assert r.value(0.0, 0.0) == 0.25
    assert r.value(3.0, 4.0) == 0.5  # (3 + 1) / (4 + 4)
    assert r.value(0.0, 12.0) == 0.0625  # 1 / 16
    with pytest.raises(ValueError, match="prior_weight"):
        SmoothedRatio(prior_mean=0.1, prior_weight=0.0)
    with pytest.raises(ValueError, match="prior_mean"):
        SmoothedRatio(prior_mean=math.nan, prior_weight=1.0)


# --------------------------------------------------------------------------------------------- ItemHistory


def test_item_history_counts_and_last_ts() -> None:
    hist = ItemHistory(max_items=3)
    slot = hist.update(None, "a", 10.0)
    slot = hist.update(slot, "a", 20.0)
    slot = hist.update(slot, "a", 15.0)  # late: counted, last_ts kept
    assert hist.lookup(slot, "a") == (3, 20.0)
    assert hist.lookup(slot, "z") is None
    assert hist.lookup(None, "a") is None


def test_item_history_eviction_order() -> None:
    hist = ItemHistory(max_items=3)
    slot = None
    for item, ts in [("a", 10.0), ("b", 20.0), ("c", 30.0), ("a", 40.0)]:
        slot = hist.update(slot, item, ts)
    assert slot == {"a": [2, 40.0], "b": [1, 20.0], "c": [1, 30.0]}
    slot = hist.update(slot, "d", 50.0)  # evicts b (last_ts 20)
    assert slot == {"a": [2, 40.0], "c": [1, 30.0], "d": [1, 50.0]}
    slot = hist.update(slot, "e", 60.0)  # evicts c (30)
    assert sorted(slot) == ["a", "d", "e"]
    slot = hist.update(slot, "f", 5.0)  # late new item, older than all: evicted at once
    assert sorted(slot) == ["a", "d", "e"]
    slot = hist.update(slot, "c", 70.0)  # evicted item comes back with a fresh count
    assert sorted(slot) == ["c", "d", "e"]
    assert hist.lookup(slot, "c") == (1, 70.0)


def test_item_history_eviction_tie_breaks_on_smallest_item_id() -> None:
    hist = ItemHistory(max_items=2)
    slot = hist.update(None, "y", 10.0)
    slot = hist.update(slot, "x", 10.0)
    slot = hist.update(slot, "z", 10.0)  # three at ts 10: "x" goes
    assert sorted(slot) == ["y", "z"]
    slot = hist.update(slot, "w", 10.0)  # now "w" itself is the smallest
    assert sorted(slot) == ["y", "z"]


def test_item_history_shrinks_oversized_slot() -> None:
    big = ItemHistory(max_items=4)
    slot = None
    for i, item in enumerate("abcd"):
        slot = big.update(slot, item, float(i))
    small = ItemHistory(max_items=2)
    slot = small.update(slot, "e", 10.0)
    assert sorted(slot) == ["d", "e"]


def test_item_history_rejects_bad_config() -> None:
    for bad in (0, 1.5, False):
        with pytest.raises(ValueError, match="max_items"):
            ItemHistory(max_items=bad)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    max_items=st.integers(min_value=1, max_value=5),
    events=st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 50)), max_size=60),
)
def test_item_history_bound_and_keeps_most_recent(max_items: int, events: list[tuple[str, int]]) -> None:
    hist = ItemHistory(max_items=max_items)
    slot = None
    for item, ts in events:
        slot = hist.update(slot, item, float(ts))
        assert len(slot) <= max_items
        # If the item just seen was evicted at once, everything kept ranks above it by (last_ts, item_id).
        if hist.lookup(slot, item) is None:
            assert all((v[1], k) > (ts, item) for k, v in slot.items())


# --------------------------------------------------------------------------------- JSON round trip / replay

MIXED_EVENTS = [
    (100.0, "a"),
    (103.5, "b"),
    (101.0, "a"),
    (160.25, "c"),
    (130.0, "d"),
    (225.0, "a"),
    (224.0, "e"),
    (400.0, "b"),
    (399.0, "f"),
]


def _run(roundtrip_each: bool) -> tuple[bytes, list[Any]]:
    dc = DecayedCount(half_life=45.0)
    wc = WindowCount(window=120.0, buckets=4)
    rec = Recency()
    hist = ItemHistory(max_items=3)
    state: dict[str, Any] = {}
    reads: list[Any] = []
    for ts, item in MIXED_EVENTS:
        reads.append(
            (
                dc.value(state.get("dc"), ts),
                wc.value(state.get("wc"), ts),
                rec.value(state.get("rec"), ts),
                hist.lookup(state.get("hist"), item),
            )
        )
        state["dc"] = dc.update(state.get("dc"), ts)
        state["wc"] = wc.update(state.get("wc"), ts)
        state["rec"] = rec.update(state.get("rec"), ts)
        state["hist"] = hist.update(state.get("hist"), item, ts)
        if roundtrip_each:
            state = orjson.loads(orjson.dumps(state))
    return orjson.dumps(state), reads


def test_json_round_trip_then_continue_is_identical() -> None:
    plain_bytes, plain_reads = _run(roundtrip_each=False)
    rt_bytes, rt_reads = _run(roundtrip_each=True)
    assert rt_bytes == plain_bytes
    assert rt_reads == plain_reads


def test_replay_twice_byte_identical() -> None:
    assert _run(roundtrip_each=False) == _run(roundtrip_each=False)


def test_int_ts_stored_as_float() -> None:
    # An int ts must not change the bytes: 100 and 100.0 serialize differently.
    assert orjson.dumps(DecayedCount(half_life=1.0).update(None, 100)) == b"[1.0,100.0]"
    assert orjson.dumps(Recency().update(None, 100)) == b"100.0"
    assert orjson.dumps(WindowCount(window=10.0, buckets=2).update(None, 7)) == b"[[5.0,1]]"
    assert orjson.dumps(ItemHistory(max_items=1).update(None, "a", 7)) == b'{"a":[1,7.0]}'
