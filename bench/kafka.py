"""Topic I/O for the benchmark: create plain topics, fill one fast, read one back with record timestamps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.core.topics import TopicSpec
from streams.kafka.admin import create_topics, partitions_of
from streams.settings import Settings

Payload = Sequence[tuple[bytes | None, bytes]]


async def create_plain_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    """Topics outside the application's set (baselines' inputs and outputs), all with ``partitions``."""
    specs = [TopicSpec(name, name, partitions) for name in names]
    await create_topics(Settings(bootstrap=bootstrap), specs)


def fast_producer(bootstrap: str) -> AIOKafkaProducer:
    # Large batches and a little linger: filling a topic must cost the benchmark seconds, not minutes.
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                            max_batch_size=1_000_000, max_request_size=4_000_000)


async def fill(bootstrap: str, topic: str, records: Payload) -> None:
    producer = fast_producer(bootstrap)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Stamped:
    key: bytes | None
    value: bytes
    timestamp: float
    """Record timestamp in seconds: the producer's wall clock when it sent it (CreateTime)."""


async def read_all(bootstrap: str, topic: str) -> list[Stamped]:
    """Every record of ``topic`` up to its current end. No consumer group: nobody's offsets move."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8_000_000)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await partitions_of(consumer, topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Stamped] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                out.extend(Stamped(m.key, m.value or b"", m.timestamp / 1000) for m in messages)
        return out
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await partitions_of(consumer, topic))]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def wait_for_request(bootstrap: str, topic: str, since: dict[int, int], request_id: str, timeout: float,
                           alive: Callable[[], bool]) -> None:
    """Wait until a record for ``request_id`` appears on ``topic`` after the offsets ``since``.

    Reading only what is new keeps the wait independent of how much the topic already holds.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(since)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, since[tp.partition])
        deadline = time.monotonic() + timeout
        needle = request_id.encode()
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError(f"the process expected to answer {request_id} died")
            batch = await consumer.getmany(timeout_ms=50)
            if any(needle in (m.value or b"") for messages in batch.values() for m in messages):
                return
        raise TimeoutError(f"no record for {request_id} on {topic} after {timeout:.0f} s")
    finally:
        await consumer.stop()
