"""Kafka's default partitioner, remembering each key's partition: the worker's producer hashes a key once, not
once per record.

Kafka's clients put a keyed record on partition ``murmur2(key) & 0x7fffffff % partitions`` (the Java client's
default partitioner; aiokafka's ``DefaultPartitioner`` is the same). aiokafka computes the hash in pure Python,
~9 µs a key: a third of what sending a record cost the worker, which sends several records per event, mostly
under keys it sent just before (a request's examples share its id, a user's score, feature log and state
changelog the user's id). The partition is the same whatever computes it, so consumers see no difference.
The worker's faust app hands it to its producer (``producer_partitioner``), so every record it sends, outputs
and changelogs alike, goes through it.

>>> from aiokafka.partitioner import DefaultPartitioner
>>> partitions = list(range(8))
>>> RememberingPartitioner()(b"user-7", partitions, partitions) == DefaultPartitioner()(b"user-7", partitions,
...                                                                                   partitions)
True
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.partitioner import DefaultPartitioner, murmur2

__all__ = ["RememberingPartitioner"]


class RememberingPartitioner:
    """aiokafka's partitioner interface (``(key, all_partitions, available) -> partition``), remembering the
    partition index of up to ``max_keys`` (key, partition count) pairs; beyond them the memory starts afresh (a
    key recurs within a few records, so nothing is lost but a hash). A record without a key is aiokafka's
    default's to place (a random available partition)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._known: dict[tuple[bytes, int], int] = {}
        self._unkeyed = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            return int(self._unkeyed(key, list(all_partitions), list(available)))
        count = len(all_partitions)
        index = self._known.get((key, count))
        if index is None:
            if len(self._known) >= self.max_keys:
                self._known.clear()
            index = self._known[(key, count)] = (murmur2(key) & 0x7FFFFFFF) % count
        return all_partitions[index]
