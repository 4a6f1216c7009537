"""Dead-letter records: the raw bytes, why they were refused, and where they came from.

The raw bytes are kept losslessly: as text when they are UTF-8, else base64 (``raw_encoding`` says which).

>>> import orjson
>>> orjson.loads(dead_letter_record(b"\\xff{", "not valid JSON", "not_json", Source("events", 2, 17, b"u1")))
{'raw': '/3s=', 'raw_encoding': 'base64', 'error': 'not valid JSON', 'code': 'not_json', \
'topic': 'events', 'partition': 2, 'offset': 17, 'key': 'u1'}
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Source:
    """Where an input record came from: a topic partition offset, or a line of a file (partition -1)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    timestamp: float | None = None
    """The record's broker timestamp in seconds, when it has one (a topic, a recording); not dead-lettered."""


def text_or_base64(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def dead_letter_record(raw: bytes, error: str, code: str, source: Source) -> bytes:
    raw_text, encoding = text_or_base64(raw)
    key = None if source.key is None else text_or_base64(source.key)[0]
    return orjson.dumps({
        "raw": raw_text,
        "raw_encoding": encoding,
        "error": error,
        "code": code,
        "topic": source.topic,
        "partition": source.partition,
        "offset": source.offset,
        "key": key,
    })


def decode_raw(record: dict[str, object]) -> bytes:
    """The original bytes of a dead-letter record (for re-processing after a fix)."""
    raw = str(record["raw"])
    return base64.b64decode(raw) if record.get("raw_encoding") == "base64" else raw.encode("utf-8")
