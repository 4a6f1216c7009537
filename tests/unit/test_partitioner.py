"""The worker's remembering partitioner places every record where Kafka's default partitioner does (aiokafka's,
the Java client's): consumers that read a user's, a request's or an item's records by partition see no
difference. And the worker's producer really uses it."""

from __future__ import annotations

import random
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner

from streams.kafka.partitioner import RememberingPartitioner
from streams.settings import Settings
from streams.worker.app import create_app


def test_every_key_lands_where_the_default_partitioner_puts_it_remembered_or_not() -> None:
    rng = random.Random(3)
    keys = [b"u-%d" % i for i in range(500)] + [rng.randbytes(rng.randint(0, 40)) for _ in range(500)]
    partitioner = RememberingPartitioner(max_keys=300)  # fewer than the keys: the memory starts afresh on the way
    default = DefaultPartitioner()
    for count in (1, 3, 8, 12):
        every = list(range(count))
        for key in keys + keys:
            assert partitioner(key, every, every) == default(key, every, every), (key, count)
        assert len(partitioner._known) <= 300


def test_the_same_key_among_another_partition_count_is_hashed_again() -> None:
    partitioner = RememberingPartitioner()
    for count in (4, 5, 4):
        every = list(range(count))
        assert partitioner(b"same", every, every) == DefaultPartitioner()(b"same", every, every)


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    partitioner = RememberingPartitioner()
    assert {partitioner(None, [0, 1, 2, 3], [1, 3]) for _ in range(50)} <= {1, 3}


def test_the_workers_producer_is_given_it(tmp_path: Path) -> None:
    sa = create_app(Settings(bootstrap="127.0.0.1:1", data_dir=tmp_path, web_enabled=False))
    assert isinstance(sa.app.producer.partitioner, RememberingPartitioner)
    settings = sa.app.producer._settings_default()  # type: ignore[attr-defined]  # what aiokafka is built with
    assert settings["partitioner"] is sa.app.producer.partitioner
