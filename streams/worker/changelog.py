"""A batch's table writes, straight to the RocksDB store and to the changelog through the producer.

``table[key] = value`` in faust writes the store, then queues a changelog record in faust's producer buffer;
one task publishes that buffer record by record through ``Topic.publish_message`` (about a millisecond each
here), and the conductor stops feeding the agent whenever more than 100 wait ("producer buffer full"). A
batch writes hundreds of keys at once, so that path, not scoring, bounded the worker. This module does what
faust does for each key — store write, changelog record to the table's partition, and the persisted offset
that tells recovery where the store is up to — with the records sent straight to the producer and awaited
together, as the batch's outputs are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.worker import _faust

__all__ = ["StagedWrites", "stage_writes"]


@dataclass
class StagedWrites:
    """Changelog records of one table partition, sent; :meth:`confirm` awaits them."""

    table: Any  # faust.Table
    topic: str
    partition: int
    acks: list[Awaitable[Any]] = field(default_factory=list)

    async def confirm(self) -> int:
        """Wait until the broker has every record, then record the newest offset as persisted (as faust's
        own changelog callback does), so a restart replays the changelog from there only."""
        if not self.acks:
            return 0
        metadata = await asyncio.gather(*self.acks)
        _faust.mark_persisted(self.table, self.topic, self.partition, max(m.offset for m in metadata))
        return len(metadata)


async def stage_writes(app: Any, table: Any, partition: int,
                       rows: Iterable[tuple[str | bytes, bytes | None]]) -> StagedWrites:
    """Write ``rows`` (key, value or ``None`` to delete) to ``table``'s store for ``partition`` and send
    their changelog records. Call within the partition's event context (the store picks its partition
    database from the current event). A ``str`` key is stored as UTF-8, a ``bytes`` key as it is."""
    staged = StagedWrites(table, _faust.changelog_topic_name(table), partition)
    for key, value in rows:
        raw_key = key if isinstance(key, bytes) else key.encode()
        if value is None:
            if not _faust.store_delete(table, raw_key):
                continue  # created and closed within the batch: never stored, nothing to delete
        else:
            _faust.store_put(table, raw_key, value)
        staged.acks.append(await app.producer.send(staged.topic, raw_key, value, partition, None, None))
    return staged
