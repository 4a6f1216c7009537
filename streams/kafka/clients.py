"""The Kafka clients of the processes that are not faust workers: the learner, the tools, the report.

Everything outside ``streams/worker/`` and ``streams/kafka/`` takes its Kafka client from here (ruff's TID251
enforces it, ``pyproject.toml``), so the client library is named in two rooms only, and a client that cannot
reach the broker fails the same way everywhere: :func:`start_or_unreachable` raises
:class:`~streams.kafka.admin.BrokerUnreachable`, which the CLI prints on one line with what to do.
"""

from __future__ import annotations

from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError, MessageSizeTooLargeError

from streams.kafka.admin import BrokerUnreachable

__all__ = [
    "CONNECT_ERRORS",
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "ConsumerRecord",
    "KafkaConnectionError",
    "KafkaError",
    "MessageSizeTooLargeError",
    "TopicPartition",
    "start_or_unreachable",
]

CONNECT_ERRORS: tuple[type[BaseException], ...] = (KafkaConnectionError, KafkaError, OSError)
"""What a client's ``start`` raises when no broker answers (or answers as no Kafka broker would)."""


class _Client(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def start_or_unreachable(client: _Client, bootstrap: str,
                               errors: tuple[type[BaseException], ...] = CONNECT_ERRORS) -> None:
    """Start ``client``; on one of ``errors``, stop it (it may hold sockets) and raise :class:`BrokerUnreachable`."""
    try:
        await client.start()
    except errors as exc:
        await client.stop()
        raise BrokerUnreachable(bootstrap, type(exc).__name__) from None
