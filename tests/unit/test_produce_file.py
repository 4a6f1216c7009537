"""Producing a file: pacing as a pure function, keys from events files, recordings read back losslessly."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.tools.eventfile import write_events
from streams.tools.produce import Outgoing, event_key, file_records, send_times
from streams.tools.record import Recorded, is_recording, read_recording, recorded_values

stamps_strategy = st.lists(st.floats(min_value=0, max_value=2e9, allow_nan=False), max_size=50)


def test_as_fast_as_possible_sends_everything_at_once() -> None:
    assert send_times([5.0, 1.0, 9.0], rate=None, speed=None) == [0.0, 0.0, 0.0]
    assert send_times([], rate=None, speed=1.0) == []


def test_rate_spaces_records_evenly_whatever_their_times() -> None:
    assert send_times([9.0, 1.0, 5.0, 5.0], rate=2.0, speed=None) == [0.0, 0.5, 1.0, 1.5]


def test_speed_scales_event_time_from_the_first_record() -> None:
    assert send_times([1000.0, 1010.0, 1030.0], rate=None, speed=1.0) == [0.0, 10.0, 30.0]
    assert send_times([1000.0, 1010.0, 1030.0], rate=None, speed=10.0) == [0.0, 1.0, 3.0]
    assert send_times([1000.0, 1010.0], rate=None, speed=0.5) == [0.0, 20.0]


def test_speed_with_out_of_order_times_never_waits_backwards() -> None:
    # 995 is older than the first record and 1005 older than 1020: both go at once, after what came before
    assert send_times([1000.0, 995.0, 1020.0, 1005.0, 1030.0], rate=None, speed=1.0) == [0.0, 0.0, 20.0, 20.0, 30.0]
    # a first record from the future holds nothing back either
    assert send_times([2000.0, 1000.0, 1500.0], rate=None, speed=1.0) == [0.0, 0.0, 0.0]


@given(stamps_strategy, st.floats(min_value=0.01, max_value=1000))
def test_speed_times_are_non_negative_and_non_decreasing(stamps: list[float], speed: float) -> None:
    due = send_times(stamps, rate=None, speed=speed)
    assert len(due) == len(stamps)
    assert all(t >= 0 for t in due)
    assert all(a <= b for a, b in itertools.pairwise(due))
    if due:
        assert due[0] == 0.0


@given(stamps_strategy, st.floats(min_value=0.01, max_value=1e6))
def test_rate_times_are_non_negative_and_non_decreasing(stamps: list[float], rate: float) -> None:
    due = send_times(stamps, rate=rate, speed=None)
    assert all(t >= 0 for t in due)
    assert all(a <= b for a, b in itertools.pairwise(due))


@pytest.mark.parametrize(("rate", "speed"), [(1.0, 1.0), (0.0, None), (-1.0, None), (None, 0.0),
                                             (None, math.inf), (math.nan, None)])
def test_bad_pacing_is_refused(rate: float | None, speed: float | None) -> None:
    with pytest.raises(ValueError):
        send_times([1.0], rate=rate, speed=speed)


def test_key_is_the_user_id_of_an_event_object() -> None:
    assert event_key(b'{"event_id":"e1","user_id":"u-\xc3\xa9","ts":1.0,"type":"view"}') == "u-é".encode()
    assert event_key(b'{"user_id":""}') == b""


@pytest.mark.parametrize("line", [b'{"user_id":42}', b'{"user_id":null}', b'{"event_id":"e1"}', b'["u1"]',
                                  b'"u1"', b"not json at all", b"\xff\xfe{"])
def test_a_line_without_a_string_user_id_has_no_key(line: bytes) -> None:
    assert event_key(line) is None


def test_events_file_lines_go_as_they_are_keyed_by_user(tmp_path: Path) -> None:
    path = tmp_path / "ev.jsonl.gz"
    bad = b'{"event_id":"e2","ts":"yesterday"'
    write_events(path, [{"event_id": "e1", "user_id": "u1", "ts": 10, "type": "view"}, bad,
                        {"event_id": "e3", "user_id": "u2", "ts": True, "type": "view"}])
    records = list(file_records(path))
    assert records == [
        Outgoing(b"u1", b'{"event_id":"e1","user_id":"u1","ts":10,"type":"view"}', 10.0),
        Outgoing(None, bad, None),
        Outgoing(b"u2", b'{"event_id":"e3","user_id":"u2","ts":true,"type":"view"}', None),
    ]


def test_a_recording_keeps_keys_bytes_and_tombstones(tmp_path: Path) -> None:
    recorded = [Recorded("events", 0, 0, 1_000, b"u1", b'{"ts":1}'),
                Recorded("events", 1, 0, 1_500, None, b"\xff\x00 not text"),
                Recorded("snapshots", 0, 1, 2_000, b"\x80key", None)]
    path = tmp_path / "rec.jsonl"
    write_events(path, [r.line() for r in recorded])
    assert is_recording(path.read_bytes().splitlines()[0])
    assert list(read_recording(path)) == recorded
    assert list(recorded_values(path)) == [(b"u1", b'{"ts":1}'), (None, b"\xff\x00 not text"), (b"\x80key", b"")]
    assert list(file_records(path)) == [Outgoing(b"u1", b'{"ts":1}', 1.0),
                                        Outgoing(None, b"\xff\x00 not text", 1.5),
                                        Outgoing(b"\x80key", None, 2.0)]


def test_an_events_file_is_not_taken_for_a_recording() -> None:
    assert not is_recording(orjson.dumps({"event_id": "e1", "user_id": "u1", "ts": 1.0, "type": "view"}))
    assert not is_recording(b"garbage")
    # an event that happens to carry a "topic" field is still an event
    assert not is_recording(b'{"topic":"t","partition":0,"offset":0,"value":"v"}')


def test_a_broken_recording_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    good = Recorded("t", 0, 0, 1, None, b"v").line()
    broken = good.replace(b'"value_encoding":"utf-8"', b'"value_encoding":"rot13"')
    write_events(path, [good, broken])
    with pytest.raises(ValueError, match="line 2"):
        list(read_recording(path))


def test_an_empty_file_sends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    write_events(path, [])
    assert list(file_records(path)) == []
