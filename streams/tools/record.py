"""Recording a topic to a file: every record of every partition, as JSON lines, in the order things happened.

A recording is what ``streamscore record`` writes and ``streamscore produce`` (or a replay) reads back. Each line
is one record; key and value are UTF-8 text when they decode, else base64 (``*_encoding`` says which), so any
bytes survive the round trip. Lines are ordered by (timestamp, partition, offset): the order things happened across
partitions, and one order only, so the same topic content always gives the same file, byte for byte.

>>> r = Recorded("events", 1, 7, 1700000000123, b"u1", b'{"ts":1.5}')
>>> r.line()
b'{"topic":"events","partition":1,"offset":7,"timestamp":1700000000123,"key":"u1","key_encoding":"utf-8",\
"value":"{\\\\"ts\\\\":1.5}","value_encoding":"utf-8"}'
>>> parse_line(r.line()) == r, is_recording(r.line()), is_recording(b'{"event_id":"e1","user_id":"u1"}')
(True, True, False)
>>> Recorded("t", 0, 0, 5, None, b"\\xff\\x00").line()
b'{"topic":"t","partition":0,"offset":0,"timestamp":5,"key":null,"key_encoding":null,\
"value":"/wA=","value_encoding":"base64"}'
>>> later, earlier = Recorded("t", 0, 9, 20, None, b"b"), Recorded("t", 1, 3, 10, None, b"a")
>>> [r.value for r in sorted([later, earlier], key=Recorded.sort_key)]
[b'a', b'b']
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.core.deadletter import text_or_base64
from streams.kafka.admin import partitions_of, ping
from streams.kafka.clients import (
    AIOKafkaConsumer,
    TopicPartition,
    start_or_unreachable,
)
from streams.tools.eventfile import PathLike, read_events, write_events

__all__ = ["Recorded", "UnknownTopic", "is_recording", "parse_line", "read_recording", "record_topic",
           "recorded_values"]

log = logging.getLogger(__name__)

_FIELDS = ("topic", "partition", "offset", "timestamp", "key", "key_encoding", "value", "value_encoding")
_ENCODINGS = ("utf-8", "base64")

CATCH_UP_PATIENCE = 30.0
"""Seconds without a record after which recording stops even before reaching the end offsets it started with.

Reading from the beginning, the idle clock only counts once every partition has been read up to where it ended
when recording began, so a slow first fetch cannot cut a recording short; this bounds that wait if the broker
stops answering."""


class UnknownTopic(LookupError):
    """The topic does not exist on the broker (producing to it would auto-create it with one partition)."""

    def __init__(self, topic: str, bootstrap: str) -> None:
        super().__init__(f"topic {topic!r} does not exist at {bootstrap}; create it first "
                         "(`streamscore topics create` creates the topics of the settings)")
        self.topic = topic


@dataclass(frozen=True, slots=True)
class Recorded:
    """One record of a topic, as a recording keeps it. ``value`` is None for a tombstone."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    """Milliseconds since the epoch, as Kafka gives it (CreateTime or LogAppendTime, per the topic)."""
    key: bytes | None
    value: bytes | None

    def sort_key(self) -> tuple[int, int, int]:
        return self.timestamp, self.partition, self.offset

    def line(self) -> bytes:
        """The JSON line of this record (no line ending); fields always in the same order."""
        key, key_encoding = _encode(self.key)
        value, value_encoding = _encode(self.value)
        return orjson.dumps({
            "topic": self.topic, "partition": self.partition, "offset": self.offset, "timestamp": self.timestamp,
            "key": key, "key_encoding": key_encoding, "value": value, "value_encoding": value_encoding,
        })


def _encode(raw: bytes | None) -> tuple[str | None, str | None]:
    return (None, None) if raw is None else text_or_base64(raw)


def _decode(text: Any, encoding: Any, what: str) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str) or encoding not in _ENCODINGS:
        raise ValueError(f"{what} must be a string with {what}_encoding utf-8 or base64, got {encoding!r}")
    if encoding == "utf-8":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError(f"{what} is not valid base64") from None


def _fields(line: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not all(name in obj for name in _FIELDS):
        return None
    return obj


def is_recording(first_line: bytes) -> bool:
    """Whether a file whose first line is this is a recording (else it is taken for a plain events file)."""
    obj = _fields(first_line)
    return obj is not None and obj["value_encoding"] in (*_ENCODINGS, None)


def parse_line(line: bytes) -> Recorded:
    """The record of one recording line; ValueError when the line is not one."""
    obj = _fields(line)
    if obj is None:
        raise ValueError(f"not a recording line (a JSON object with the fields {', '.join(_FIELDS)}): {line[:80]!r}")
    numbers = [obj[name] for name in ("partition", "offset", "timestamp")]
    if not isinstance(obj["topic"], str) or not all(type(n) is int for n in numbers):
        raise ValueError(f"topic must be a string and partition, offset, timestamp integers: {line[:80]!r}")
    return Recorded(obj["topic"], numbers[0], numbers[1], numbers[2],
                    _decode(obj["key"], obj["key_encoding"], "key"),
                    _decode(obj["value"], obj["value_encoding"], "value"))


def read_recording(path: PathLike) -> Iterator[Recorded]:
    """Every record of a recording, in the file's order; a bad line raises ValueError naming its number."""
    for number, line in enumerate(read_events(path), start=1):
        try:
            yield parse_line(line)
        except ValueError as exc:
            raise ValueError(f"{path}: line {number}: {exc}") from None


def recorded_values(path: PathLike) -> Iterator[tuple[bytes | None, bytes]]:
    """(key, value) bytes of every record of a recording, in order.

    A tombstone (null value) comes back as ``b""``: readers of values (a replay) have nothing to decode either
    way; :func:`read_recording` keeps the difference for those who need it (``produce`` re-sends tombstones).
    """
    for record in read_recording(path):
        yield record.key, b"" if record.value is None else record.value


async def record_topic(bootstrap: str, topic: str, out: Path, *, from_beginning: bool = True,
                       until_idle: float = 5.0, progress: Callable[[int], None] | None = None) -> int:
    """Record every partition of ``topic`` to ``out`` (gzip when it ends with ``.gz``); return the record count.

    No consumer group: recording moves nobody's offsets. From the beginning, or, with ``from_beginning`` false,
    only what arrives while recording. Stops once no record arrived for ``until_idle`` seconds (reading from the
    beginning, only after reaching the end the topic had when recording began). ``progress`` gets the count read so
    far. Every record is held in memory until the end, to be written in (timestamp, partition, offset) order.
    """
    if not until_idle >= 0:  # also refuses NaN
        raise ValueError(f"until_idle must be >= 0 seconds, got {until_idle}")
    if topic not in await ping(bootstrap):
        raise UnknownTopic(topic, bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest" if from_beginning else "latest")
    await start_or_unreachable(consumer, bootstrap)
    try:
        records = await _read_until_idle(consumer, bootstrap, topic, from_beginning, until_idle, progress)
    finally:
        await consumer.stop()
    records.sort(key=Recorded.sort_key)
    return write_events(out, (record.line() for record in records))


async def _read_until_idle(consumer: AIOKafkaConsumer, bootstrap: str, topic: str, from_beginning: bool,
                           until_idle: float, progress: Callable[[int], None] | None) -> list[Recorded]:
    partitions = await partitions_of(consumer, topic)
    if not partitions:
        raise UnknownTopic(topic, bootstrap)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    behind: dict[TopicPartition, int] = {}
    if from_beginning:
        await consumer.seek_to_beginning(*tps)
        behind = {tp: end for tp, end in (await consumer.end_offsets(tps)).items() if end > 0}
    else:
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end now: "from the end" means from this moment, not from the first fetch
            await consumer.position(tp)
    loop = asyncio.get_running_loop()
    records: list[Recorded] = []
    last_new = loop.time()
    while True:
        for tp in list(behind):
            if await consumer.position(tp) >= behind[tp]:
                del behind[tp]
        idle = loop.time() - last_new
        if idle >= (max(until_idle, CATCH_UP_PATIENCE) if behind else until_idle):
            if behind:
                log.warning("recording %s stopped after %.0f s without records, short of the end offsets: %s",
                            topic, idle, {tp.partition: end for tp, end in behind.items()})
            return records
        wait = 0.2 if behind else min(0.2, until_idle - idle)
        batch = await consumer.getmany(timeout_ms=max(1, int(wait * 1000)))
        count = len(records)
        for messages in batch.values():
            records.extend(Recorded(m.topic, m.partition, m.offset, m.timestamp, m.key, m.value) for m in messages)
        if len(records) > count:
            last_new = loop.time()
            if progress is not None:
                progress(len(records))
