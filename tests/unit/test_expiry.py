"""Unit tests of streams.core.expiry: when a partition is swept, and which users a sweep deletes."""

from __future__ import annotations

from typing import Any

import pytest

from features.builtin import Activity
from features.featureset import FeatureSet
from features.state import decode_state, encode_state
from streams.core.expiry import ExpirySweeper, expired_users
from streams.events import Interaction

# ------------------------------------------------------------------------------------------------- due


def test_first_event_starts_the_clock_and_the_boundary_is_inclusive() -> None:
    s = ExpirySweeper(every=100.0)
    assert s.due(0, 1000.0) is False  # first event: next sweep at 1100
    assert s.due(0, 1099.9) is False
    assert s.due(0, 1100.0) is True  # exactly `every` later: due; next at 1200
    assert s.due(0, 1100.0) is False
    assert s.due(0, 1199.0) is False
    assert s.due(0, 1250.0) is True  # next at 1350, counted from this sweep, not from 1200
    assert s.due(0, 1349.0) is False
    assert s.due(0, 1350.0) is True


def test_due_is_per_partition() -> None:
    s = ExpirySweeper(every=100.0)
    assert s.due(0, 1000.0) is False
    assert s.due(1, 1100.0) is False  # partition 1's first event: its own clock, next at 1200
    assert s.due(0, 1100.0) is True
    assert s.due(1, 1199.0) is False
    assert s.due(1, 1200.0) is True
    assert s.due(2, 5000.0) is False


def test_event_time_going_back_is_never_due() -> None:
    s = ExpirySweeper(every=100.0)
    s.due(0, 1000.0)
    assert s.due(0, 500.0) is False
    assert s.due(0, 1100.0) is True


# -------------------------------------------------------------------------------------------- expired_users


def _blob(last_ts: float) -> bytes:
    return encode_state({"activity": [1, last_ts], "_ts": last_ts, "_pos": 0})


def test_expired_users_uses_the_horizon_with_an_exclusive_ttl() -> None:
    fs = FeatureSet([Activity()], user_ttl=100.0)
    items = [(b"a", _blob(1000.0)), (b"b", _blob(1050.0)), (b"c", _blob(999.0)), (b"d", _blob(1200.0))]
    assert expired_users(items, fs, horizon=1100.0) == [b"c"]  # a: idle exactly the TTL, kept
    assert expired_users(items, fs, horizon=1100.5) == [b"a", b"c"]
    assert expired_users(items, fs, horizon=1300.0) == [b"a", b"b", b"c"]  # d idle exactly the TTL
    assert expired_users(items, fs, horizon=900.0) == []


def test_expired_users_skips_states_without_time() -> None:
    # faust's own keys never get here: streams/worker/_faust.py (partition_rows) leaves them out, and
    # tests/unit/test_adapters.py checks that.
    fs = FeatureSet([Activity()], user_ttl=10.0)
    items = [
        (b"u1", _blob(0.0)),
        (b"u2", encode_state({})),
        (b"u3", b""),
    ]
    assert expired_users(items, fs, horizon=1e6) == [b"u1"]


def test_expired_users_without_ttl_is_empty() -> None:
    assert expired_users([(b"u1", _blob(0.0))], FeatureSet([Activity()]), horizon=1e12) == []


@pytest.mark.parametrize("event_ts", [1160.0, 1200.0, 1500.0])
def test_the_sweep_horizon_only_deletes_users_any_on_time_event_would_expire(event_ts: float) -> None:
    """As the worker sweeps: horizon = the partition's newest ts - allowed lateness. An event still on time
    (ts >= newest - lateness) finds every swept user expired anyway, so the sweep changes no output."""
    ttl, lateness, newest = 100.0, 40.0, 1200.0
    fs = FeatureSet([Activity()], user_ttl=ttl)
    items = [(f"u{t:g}".encode(), _blob(t)) for t in (1000.0, 1059.0, 1059.5, 1060.0, 1061.0, 1150.0)]
    swept = expired_users(items, fs, horizon=newest - lateness)  # horizon 1160: idle more than 100 s before it
    assert swept == [b"u1000", b"u1059", b"u1059.5"]
    # an on-time event (event_ts >= 1160) of a swept user would have found it expired too
    for key, blob in items:
        if key in swept:
            state = decode_state(blob)
            assert fs.expire(state, event_ts) is True
            assert state == {}
    # and the sweep kept u1060 which an event at exactly the horizon must still see
    kept: dict[str, Any] = {"_ts": 1060.0}
    assert fs.expire(kept, newest - lateness) is False
    assert kept == {"_ts": 1060.0}
    fs.update(kept, Interaction("e", "u1060", newest - lateness, "view"), position=1)
    assert kept["activity"] == [1, 1160.0]
