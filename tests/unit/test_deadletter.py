"""Dead-letter records keep the refused bytes losslessly, with the reason and where they came from."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.deadletter import Source, decode_raw
from streams.core.records import dead_letter_record

FIELDS = {"raw", "raw_encoding", "error", "code", "topic", "partition", "offset", "key"}


def test_utf8_bytes_are_kept_as_text_with_every_field() -> None:
    raw = '{"event_id":"é1","ts":"x"}'.encode()
    record = orjson.loads(dead_letter_record(raw, "field 'ts' must be a finite number", "invalid",
                                             Source("events", 3, 1234, b"u\xc3\xa9")))
    assert record == {
        "raw": '{"event_id":"é1","ts":"x"}', "raw_encoding": "utf-8", "error": "field 'ts' must be a finite number",
        "code": "invalid", "topic": "events", "partition": 3, "offset": 1234, "key": "ué",
    }
    assert decode_raw(record) == raw


def test_non_utf8_bytes_are_kept_as_base64() -> None:
    raw = b"\xff\xfe{\x00\x80"
    record = orjson.loads(dead_letter_record(raw, "not valid JSON", "not_json", Source("events", 0, 0)))
    assert set(record) == FIELDS
    assert record["raw"] == "//57AIA="
    assert base64.b64decode(record["raw"]) == raw
    assert record["raw_encoding"] == "base64"
    assert record["key"] is None
    assert decode_raw(record) == raw


def test_a_file_source_and_empty_bytes() -> None:
    record = orjson.loads(dead_letter_record(b"", "not valid JSON", "not_json", Source("events.jsonl", -1, 41)))
    assert record == {"raw": "", "raw_encoding": "utf-8", "error": "not valid JSON", "code": "not_json",
                      "topic": "events.jsonl", "partition": -1, "offset": 41, "key": None}
    assert decode_raw(record) == b""


@pytest.mark.parametrize("raw", [b"\xed\xa0\x80", b"\xc3", "😀".encode()[:3], b"\xc0\xaf"])
def test_invalid_utf8_sequences_go_to_base64(raw: bytes) -> None:
    # Encoded surrogates, truncated and overlong sequences are not UTF-8; they must not be "repaired".
    record = orjson.loads(dead_letter_record(raw, "e", "not_json", Source("events", 0, 1)))
    assert record["raw_encoding"] == "base64"
    assert decode_raw(record) == raw


def test_utf8_text_that_looks_like_base64_stays_text() -> None:
    record = orjson.loads(dead_letter_record(b"QUJD", "e", "not_json", Source("events", 0, 1)))
    assert (record["raw"], record["raw_encoding"]) == ("QUJD", "utf-8")
    assert decode_raw(record) == b"QUJD"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=32).map(str.encode), st.text(max_size=20),
       st.none() | st.binary(max_size=8), st.integers(-1, 2**31), st.integers(0, 2**62))
def test_any_bytes_round_trip(raw: bytes, error: str, key: bytes | None, partition: int, offset: int) -> None:
    data = dead_letter_record(raw, error, "invalid", Source("events", partition, offset, key))
    record = orjson.loads(data)
    assert set(record) == FIELDS
    assert decode_raw(record) == raw
    assert (record["error"], record["code"], record["topic"]) == (error, "invalid", "events")
    assert (record["partition"], record["offset"]) == (partition, offset)
    assert (record["key"] is None) == (key is None)
    if raw.isascii():
        assert record["raw_encoding"] == "utf-8"
        assert record["raw"] == raw.decode()
