"""Read a range of offsets of one partition again, or partitions' earliest offsets, outside the worker's group
consumer.

The worker uses it to fill a gap its own consumer left (``streams/core/gaps.py``). Its own consumer cannot
do it: seeking faust's consumer back is undone by faust itself while records after the gap are still on their
way (it drops any record older than the newest it delivered; tried, and the gap's records never came). So a
short-lived consumer without a group reads the range, and the worker processes it in order before the record
that revealed the gap.

The earliest and end offsets (``OffsetsReader``: the first record of a partition never processed, and the
stall watch's end offsets) are asked the same way because faust's consumer sends every request on the connection
its fetches use: a Kafka broker answers one connection's requests in order, so a ListOffsets request waits
behind a fetch that is long-polling for data (up to the 1.5 s faust sets), once per partition assigned.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streams.kafka.admin import partitions_of

__all__ = ["OffsetsReader", "earliest_offsets", "read_range"]


async def read_range(bootstrap: str, topic: str, partition: int, start: int, end: int,
                     timeout: float = 30.0) -> list[ConsumerRecord[Any, Any]]:
    """The records of ``topic``/``partition`` with ``start <= offset < end``, in offset order.

    Offsets the partition no longer holds (deleted by retention, or used by transaction markers) are simply
    absent. Raises ``TimeoutError`` if the range could not be read within ``timeout`` seconds.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await partitions_of(consumer, topic)  # Kafka 4 tells a consumer that only assigns about no topic
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[ConsumerRecord[Any, Any]] = []
        deadline = time.monotonic() + timeout
        while await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading offsets {start} to {end - 1} of {topic}/{partition} took over {timeout} s")
            fetched = await consumer.getmany(tp, timeout_ms=500)
            records += [r for r in fetched.get(tp, []) if start <= r.offset < end]
        return records
    finally:
        await consumer.stop()


async def earliest_offsets(bootstrap: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The earliest offset the topic still holds of each of ``partitions`` (a reader of its own, stopped after)."""
    reader = OffsetsReader(bootstrap)
    try:
        return {partition: earliest for partition, (earliest, _) in (await reader.bounds(topic, partitions)).items()}
    finally:
        await reader.stop()


class OffsetsReader:
    """One group-less consumer kept open to ask partitions' earliest and end offsets, off the connection the
    worker's fetches use (see the module's docstring). It connects on first use, and again after a failure
    (a broker restart); ``stop`` when done."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.consumer: AIOKafkaConsumer | None = None
        self.known: set[str] = set()

    async def stop(self) -> None:
        consumer, self.consumer, self.known = self.consumer, None, set()
        if consumer is not None:
            await consumer.stop()

    async def bounds(self, topic: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """(earliest, end) offsets of each of ``partitions``: the end is the offset the next record will get."""
        try:
            if self.consumer is None:
                self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                                 enable_auto_commit=False)
                await self.consumer.start()
            if topic not in self.known:
                await partitions_of(self.consumer, topic)
                self.known.add(topic)
            tps = [TopicPartition(topic, p) for p in partitions]
            earliest = await self.consumer.beginning_offsets(tps)
            end = await self.consumer.end_offsets(tps)
        except Exception:
            await self.stop()  # connect afresh next time
            raise
        return {tp.partition: (earliest[tp], end[tp]) for tp in tps}
