"""The worker's remembered partition of a key is the one Kafka's default partitioner gives (aiokafka's, the Java
client's): consumers that read a user's, a request's or an item's records by partition see no difference."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from streams.kafka.partitioner import KeyPartitions


def test_every_key_lands_where_the_default_partitioner_puts_it_remembered_or_not() -> None:
    rng = random.Random(3)
    keys = [b"u-%d" % i for i in range(500)] + [rng.randbytes(rng.randint(0, 40)) for _ in range(500)]
    partitions = KeyPartitions(max_keys=300)  # smaller than the keys: the memory starts afresh on the way
    default = DefaultPartitioner()
    for count in (1, 3, 8, 12):
        every = list(range(count))
        for key in keys + keys:
            assert partitions.of(key, count) == default(key, every, every), (key, count)
    assert partitions.hits > 0


def test_the_memory_is_bounded_and_keyed_by_the_partition_count_too() -> None:
    partitions = KeyPartitions(max_keys=10)
    for i in range(100):
        partitions.of(b"k%d" % i, 4)
        assert len(partitions._known) <= 10
    first = partitions.of(b"same", 4)
    assert partitions.of(b"same", 5) == DefaultPartitioner()(b"same", list(range(5)), list(range(5)))
    assert partitions.of(b"same", 4) == first
