"""The one aiokafka internal the plain clients (record, report, learner) rely on, kept apart from the worker's.

faust's internals live in ``streams/worker/_faust.py``; this one is here because the tools that need it must not
import faust (half a second at start) and ``streams/kafka/`` must not depend on the worker.
``tests/unit/test_adapters.py`` checks on the real class that it still exists.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

__all__ = ["request_topic_metadata"]


async def request_topic_metadata(consumer: AIOKafkaConsumer, topic: str) -> None:
    """Ask the broker about ``topic`` through the consumer's client (aiokafka has no public call for it)."""
    await consumer._client.add_topic(topic)
