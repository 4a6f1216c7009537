"""Producing a file to a topic: a recording (keys kept) or a plain events file (keyed by ``user_id``).

Which kind a file is, its first line says (:func:`streams.tools.record.is_recording`). An events file's lines are sent
as they are, byte for byte, keyed by the event's ``user_id``; a line that is not a JSON object with a string
``user_id`` is still sent, with no key, so the worker dead-letters it with its reason instead of it vanishing here.

Pacing is as fast as possible, ``rate`` records per second, or ``speed`` times event time (``ts`` of an events
file, ``timestamp`` of a recording). :func:`send_times` is that pacing as a pure function:

>>> send_times([100.0, 101.0, 103.0], rate=None, speed=2.0)
[0.0, 0.5, 1.5]
>>> send_times([100.0, 99.0, 104.0], rate=None, speed=1.0)   # a late record goes at once, never back in time
[0.0, 0.0, 4.0]
>>> send_times([5.0, 1.0, 3.0], rate=4.0, speed=None)
[0.0, 0.25, 0.5]
>>> event_key(b'{"user_id":"u1","ts":1}'), event_key(b'{"user_id":7}'), event_key(b'not json')
(b'u1', None, None)
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.core.topics import MAX_SNAPSHOT_BYTES
from streams.kafka.admin import ping
from streams.kafka.clients import AIOKafkaProducer, start_or_unreachable
from streams.tools.eventfile import PathLike, read_events
from streams.tools.record import UnknownTopic, is_recording, read_recording

__all__ = ["Outgoing", "event_key", "file_records", "produce_file", "send_times"]

_ACK_BATCH = 1000
"""Sends awaited together: errors surface within this many records, and the futures held stay few."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to send, with its event time in seconds (None when the line has none)."""

    key: bytes | None
    value: bytes | None
    stamp: float | None


def _event(line: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def event_key(line: bytes) -> bytes | None:
    """The key of an events-file line: its ``user_id`` as UTF-8, or None when it has no string ``user_id``."""
    event = _event(line)
    user_id = None if event is None else event.get("user_id")
    return user_id.encode("utf-8") if isinstance(user_id, str) else None


def _event_outgoing(line: bytes) -> Outgoing:
    event = _event(line) or {}
    user_id, ts = event.get("user_id"), event.get("ts")
    # bool is an int to Python, not an event time to anyone
    stamp = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts) else None
    return Outgoing(user_id.encode("utf-8") if isinstance(user_id, str) else None, line, stamp)


def file_records(path: PathLike) -> Iterator[Outgoing]:
    """What :func:`produce_file` sends for ``path``, in the file's order."""
    first = next(read_events(path), None)  # the generator is dropped at once, which closes the file
    if first is None:
        return
    if is_recording(first):
        for record in read_recording(path):
            stamp = record.timestamp / 1000 if record.timestamp >= 0 else None  # -1: the broker gave no time
            yield Outgoing(record.key, record.value, stamp)
    else:
        for line in read_events(path):
            yield _event_outgoing(line)


def _check_pacing(rate: float | None, speed: float | None) -> None:
    if rate is not None and speed is not None:
        raise ValueError("give rate or speed, not both")
    for name, value in (("rate", rate), ("speed", speed)):
        if value is not None and not 0 < value < math.inf:
            raise ValueError(f"{name} must be a finite number > 0, got {value}")


class _Pacer:
    """When each record is due, in seconds after the first; fed one event time at a time (None: no time)."""

    def __init__(self, rate: float | None, speed: float | None) -> None:
        _check_pacing(rate, speed)
        self.rate, self.speed = rate, speed
        self.sent = 0
        self.first: float | None = None
        self.newest: float | None = None

    def next_due(self, stamp: float | None) -> float:
        index, self.sent = self.sent, self.sent + 1
        if self.rate is not None:
            return index / self.rate
        if self.speed is None or (stamp is None and self.newest is None):
            return 0.0
        if stamp is not None:
            if self.first is None:
                self.first = stamp
            # the newest time so far, not this record's: a record behind it is late and goes at once
            self.newest = stamp if self.newest is None else max(self.newest, stamp)
        assert self.first is not None and self.newest is not None
        return (self.newest - self.first) / self.speed


def send_times(stamps: Sequence[float], *, rate: float | None, speed: float | None) -> list[float]:
    """Seconds after the start at which each record is due: never negative, never earlier than the one before.

    ``rate``: ``i / rate``. ``speed``: event time since the first record over ``speed``, where a record older than
    one already sent is due at once. Neither: all at once. Both: ValueError.
    """
    pacer = _Pacer(rate, speed)
    return [pacer.next_due(stamp) for stamp in stamps]


async def produce_file(bootstrap: str, path: Path, topic: str, *, rate: float | None = None,
                       speed: float | None = None, progress: Callable[[int], None] | None = None) -> int:
    """Send every record of ``path`` (a recording or an events file) to ``topic`` with acks=all; return the count.

    The topic must exist: producing would otherwise auto-create it with one partition, which the worker refuses.
    Records get the time they are sent as their Kafka timestamp, not the recorded one: an old timestamp could
    put them past the topic's retention at once. ``progress`` gets the count sent so far.
    """
    pacer = _Pacer(rate, speed)  # bad pacing is refused before anything is sent
    if topic not in await ping(bootstrap):
        raise UnknownTopic(topic, bootstrap)
    # max_request_size: a recording of model-snapshots holds records up to the snapshot topic's limit
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=MAX_SNAPSHOT_BYTES)
    await start_or_unreachable(producer, bootstrap)
    try:
        return await _send_all(producer, topic, file_records(path), pacer, progress)
    finally:
        await producer.stop()


async def _send_all(producer: AIOKafkaProducer, topic: str, records: Iterator[Outgoing], pacer: _Pacer,
                    progress: Callable[[int], None] | None) -> int:
    loop = asyncio.get_running_loop()
    start = loop.time()
    pending: list[asyncio.Future[Any]] = []
    count = 0
    for record in records:
        delay = start + pacer.next_due(record.stamp) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(await producer.send(topic, value=record.value, key=record.key))
        count += 1
        if len(pending) >= _ACK_BATCH:
            await asyncio.gather(*pending)
            pending.clear()
        if progress is not None:
            progress(count)
    await asyncio.gather(*pending)
    return count
