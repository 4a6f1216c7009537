"""Where an input record came from (:class:`Source`), and its raw bytes kept losslessly for a dead letter: as
text when they are UTF-8, else base64 (``raw_encoding`` says which). The dead-letter record's shape is in
``streams/core/records.py`` with the other outputs'.

>>> text_or_base64(b"\\xff{"), decode_raw({"raw": "/3s=", "raw_encoding": "base64"})
(('/3s=', 'base64'), b'\\xff{')
"""

from __future__ import annotations

import base64
from dataclasses import dataclass


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


def decode_raw(record: dict[str, object]) -> bytes:
    """The original bytes of a dead-letter record (for re-processing after a fix)."""
    raw = str(record["raw"])
    return base64.b64decode(raw) if record.get("raw_encoding") == "base64" else raw.encode("utf-8")
