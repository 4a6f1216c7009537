"""A checkpoint's table writes: changelog records first, then one RocksDB write batch per partition.

``table[key] = value`` in faust writes the store, then queues a changelog record in faust's producer buffer;
one task publishes that buffer record by record (about a millisecond each here), and the conductor stops
feeding the agent whenever more than 100 wait. A checkpoint writes hundreds of keys at once, so that path, not
scoring, bounded the worker. Here, as quixstreams does it (``state/rocksdb/partition.py``): every changed key's
record goes straight to the producer, they are awaited together, and only then are the rows written to the
partition's store in one write batch that also carries the changelog offset they reached (faust's "persisted
offset", from which its recovery replays the changelog). So the store never holds a row its changelog lacks,
and a crash between the two leaves the store behind its changelog, which recovery brings up to date.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.worker import _faust

__all__ = ["StagedWrites", "stage_writes", "write_staged"]


@dataclass
class StagedWrites:
    """The rows of one table partition, their changelog records sent; :meth:`confirm` awaits and stores them."""

    table: Any  # faust.Table
    partition: int
    rows: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    acks: list[Awaitable[Any]] = field(default_factory=list)

    async def confirm(self) -> int:
        """Wait until the broker has every record, then write the rows and the newest changelog offset to the
        partition's store in one write batch. Returns how many rows were written."""
        if not self.rows:
            return 0
        metadata = await asyncio.gather(*self.acks)
        _faust.write_partition(self.table, self.partition, self.rows, max(m.offset for m in metadata))
        return len(self.rows)


async def stage_writes(app: Any, table: Any, partition: int,
                       rows: Iterable[tuple[str | bytes, bytes | None]]) -> StagedWrites:
    """Send the changelog records of ``rows`` (key, value or ``None`` to delete) of ``table``'s ``partition``.
    A ``str`` key is stored as UTF-8, a ``bytes`` key as it is."""
    staged = StagedWrites(table, partition)
    topic = _faust.changelog_topic_name(table)
    send = app.producer.send
    db = _faust.partition_db(table, partition)
    for key, value in rows:
        raw_key = key if isinstance(key, bytes) else key.encode()
        if value is None and db.get(raw_key) is None:
            continue  # created and deleted since the last checkpoint: never stored, nothing to delete
        staged.rows.append((raw_key, value))
        staged.acks.append(await send(topic, raw_key, value, partition, None, None))
    return staged


async def write_staged(staged: Iterable[StagedWrites]) -> int:
    """Confirm several partitions' writes, whose records were all sent first (their round trips overlap)."""
    return sum([await writes.confirm() for writes in staged])
