"""The live learner's item-vector loop: follow every partition of ``events``, ship signed item vectors.

The learner follows ``events`` the way workers follow ``model-snapshots``: a consumer without a group, from
the beginning (``streams/kafka/follow.py``), so it sees every user's sequence whichever worker owns it. Each
record goes to the :class:`~streams.core.vectortrainer.ItemVectorTrainer`, which makes a version every
``item_vectors_every`` seconds of event time; versions are published, signed, to ``model-snapshots`` under
the key ``item_vectors`` (the topic is compacted: the newest version is what a starting worker reads).

A restarted learner reads ``events`` again from the beginning and makes the same versions from what is still
retained; workers keep the newer version they hold (the version is the event time it is trained until).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.core.counters import Counters
from streams.core.deadletter import Source
from streams.core.vectortrainer import ITEM_VECTORS, ItemVectorTrainer, signed
from streams.kafka.clients import AIOKafkaProducer, ConsumerRecord
from streams.kafka.follow import follow_topic
from streams.settings import Settings

__all__ = ["follow_events_for_vectors"]

log = logging.getLogger(__name__)


async def follow_events_for_vectors(settings: Settings, trainer: ItemVectorTrainer, producer: AIOKafkaProducer,
                                    stop: asyncio.Event, counters: Counters) -> None:
    """Train ``trainer`` on every record of ``events`` and publish each version it makes, until ``stop``."""
    topic = settings.topic("events")
    made: asyncio.Queue[bytes] = asyncio.Queue()
    key = settings.snapshot_key.encode()

    def take(record: ConsumerRecord[Any, Any]) -> None:
        source = Source(topic, record.partition, record.offset, record.key, record.timestamp / 1000)
        for vectors in trainer.offer(record.value or b"", source):
            made.put_nowait(signed(vectors, key))

    async def publish() -> None:
        while True:
            blob = await made.get()
            await (await producer.send(settings.topic("model-snapshots"), key=ITEM_VECTORS.encode(), value=blob))
            counters.inc("item_vectors_published")

    publisher = asyncio.create_task(publish())
    try:
        await follow_topic(settings.bootstrap, topic, take, stop, counters, "item_vectors_feed_errors")
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
