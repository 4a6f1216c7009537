"""Event files: JSON lines, plain or gzip, read back byte for byte, written deterministically."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from streams.tools.eventfile import read_events, write_events

EVENTS = [
    {"event_id": "e1", "user_id": "u1", "ts": 1.5, "type": "view", "item_id": "i1"},
    {"event_id": "e2", "user_id": "u2", "ts": 2.0, "type": "request", "request_id": "r1",
     "candidates": [{"item_id": "a", "price": 9.5}, "b"]},
]


@pytest.mark.parametrize("name", ["ev.jsonl", "ev.jsonl.gz"])
def test_round_trip_of_dicts_and_bytes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    raw = b'{"event_id":"e3","user_id":"u1","ts":3,"type":"click"}'
    assert write_events(path, [*EVENTS, raw]) == 3
    lines = list(read_events(path))
    assert lines == [orjson.dumps(EVENTS[0]), orjson.dumps(EVENTS[1]), raw]
    assert [orjson.loads(line) for line in lines[:2]] == EVENTS


def test_gzip_by_suffix_only(tmp_path: Path) -> None:
    write_events(tmp_path / "a.jsonl.gz", EVENTS)
    write_events(tmp_path / "a.jsonl", EVENTS)
    assert (tmp_path / "a.jsonl.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()) == (tmp_path / "a.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() == b"".join(orjson.dumps(e) + b"\n" for e in EVENTS)


def test_same_events_give_byte_identical_gzip_files(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    write_events(tmp_path / "one.jsonl.gz", EVENTS)
    write_events(tmp_path / "x" / "other-name.jsonl.gz", iter(EVENTS))
    one = (tmp_path / "one.jsonl.gz").read_bytes()
    assert one == (tmp_path / "x" / "other-name.jsonl.gz").read_bytes()
    assert one[4:8] == b"\x00\x00\x00\x00"  # gzip header MTIME
    assert one[3] & 0x08 == 0  # no FNAME in the header


def test_reading_skips_blank_lines_and_strips_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "hand.jsonl"
    path.write_bytes(b'{"a":1}\r\n\n   \n{"b":2}\n\n{"c":3}')
    assert list(read_events(path)) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    gz = tmp_path / "hand.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert list(read_events(gz)) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_reading_does_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"not json\n{}\n")
    assert list(read_events(path)) == [b"not json", b"{}"]


def test_read_write_round_trip_is_identity(tmp_path: Path) -> None:
    src = tmp_path / "src.jsonl"
    src.write_bytes(b'{"z":1,"a":2}\n{"k":"v"}\n')
    assert write_events(tmp_path / "dst.jsonl", read_events(src)) == 2
    assert (tmp_path / "dst.jsonl").read_bytes() == src.read_bytes()


def test_bytes_with_one_trailing_newline_are_accepted(tmp_path: Path) -> None:
    write_events(tmp_path / "n.jsonl", [b'{"a":1}\n'])
    assert (tmp_path / "n.jsonl").read_bytes() == b'{"a":1}\n'


@pytest.mark.parametrize("bad", [b'{"a":1}\n{"b":2}', b'{"a":\r1}', b"  ", b""])
def test_bytes_that_are_not_one_line_are_refused(tmp_path: Path, bad: bytes) -> None:
    with pytest.raises(ValueError, match="event #2"):
        write_events(tmp_path / "bad.jsonl", [b"{}", bad])
    assert not list(tmp_path.iterdir()), "no partial file and no temporary file is left behind"


def test_other_types_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="event #1 must be a dict or bytes, got str"):
        write_events(tmp_path / "bad.jsonl.gz", ['{"a": 1}'])  # type: ignore[list-item]
    assert not list(tmp_path.iterdir())


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "keep.jsonl.gz"
    write_events(path, EVENTS)
    before = path.read_bytes()

    def broken():
        yield EVENTS[0]
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError):
        write_events(path, broken())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jsonl.gz"]


def test_empty_input_writes_an_empty_file(tmp_path: Path) -> None:
    assert write_events(tmp_path / "e.jsonl.gz", []) == 0
    assert list(read_events(tmp_path / "e.jsonl.gz")) == []
