"""Talking to the broker as an administrator: is it there, and create the topics of DESIGN.md."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from streams.core.topics import TopicSpec, topic_specs
from streams.kafka._aiokafka import request_topic_metadata
from streams.settings import Settings

log = logging.getLogger(__name__)


class TopicMismatch(ValueError):
    """A topic exists with a partition count other than the settings give."""


class BrokerUnreachable(RuntimeError):
    """No Kafka broker answers at the address; the message names it and says how to start one."""

    def __init__(self, bootstrap: str, detail: str = "") -> None:
        super().__init__(
            f"no Kafka broker answers at {bootstrap}{f' ({detail})' if detail else ''}; start one with "
            "`streamscore broker start` or set STREAMSCORE_BOOTSTRAP to a running broker's host:port"
        )
        self.bootstrap = bootstrap


async def _admin(bootstrap: str, timeout: float) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (KafkaConnectionError, KafkaError, OSError, TimeoutError) as exc:
        await admin.close()
        raise BrokerUnreachable(bootstrap, type(exc).__name__) from None
    return admin


async def ping(bootstrap: str, timeout: float = 5.0) -> list[str]:
    """The broker's topic names; raises :class:`BrokerUnreachable` when nothing answers."""
    admin = await _admin(bootstrap, timeout)
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


def ping_once(bootstrap: str, timeout: float = 2.0) -> None:
    """:func:`ping` from synchronous code; raises :class:`BrokerUnreachable` when nothing answers."""
    asyncio.run(ping(bootstrap, timeout=timeout))


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The partitions of ``topic`` as a started consumer with no subscription sees them (empty: no such topic).

    aiokafka bootstraps with ``MetadataRequest([])``, which older brokers answered with every topic and Kafka 4
    answers with none, so a consumer that only ``assign``s knows no topic until it asks for one. Asking goes
    through the client's topic list (aiokafka has no public call for it: ``streams/kafka/_aiokafka.py``).
    """
    known = consumer.partitions_for_topic(topic)
    if not known:
        await request_topic_metadata(consumer, topic)
        known = consumer.partitions_for_topic(topic)
    return set(known or ())


async def _wait_until_served(admin: AIOKafkaAdminClient, bootstrap: str, names: list[str],
                             timeout: float = 30.0) -> None:
    """Return once every topic has a leader for each partition.

    Kafka answers CreateTopics before its brokers' metadata caches know the topic (KRaft propagates it
    through the metadata log), so a client that asks at once may see no partitions: a consumer assigns
    nothing, a producer waits. Returning only when the metadata serves them makes "created" mean usable.
    """
    deadline = time.monotonic() + timeout
    waiting = set(names)
    while waiting:
        for described in await admin.describe_topics(sorted(waiting)):
            partitions = described.get("partitions") or []
            if described.get("error_code") == 0 and partitions and all(p["leader"] >= 0 for p in partitions):
                waiting.discard(described["topic"])
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise BrokerUnreachable(bootstrap, f"topics {sorted(waiting)} created but not served after {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def create_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> dict[str, str]:
    """Create every topic with its partition count and configs; return ``{name: "created" | "exists"}``.

    Raises :class:`TopicMismatch` when a topic exists with another partition count: faust would refuse to start
    (``PartitionsMismatch``), and silently using it would split users' state.
    """
    specs = topic_specs(settings) if specs is None else specs
    admin = await _admin(settings.bootstrap, 10.0)
    result: dict[str, str] = {}
    try:
        existing = set(await admin.list_topics())
        for spec in specs:
            if spec.name in existing:
                result[spec.name] = "exists"
                continue
            try:
                await admin.create_topics([NewTopic(spec.name, spec.partitions, settings.replication,
                                                    topic_configs=spec.config)])
                result[spec.name] = "created"
            except TopicAlreadyExistsError:
                result[spec.name] = "exists"
        # Every one, not only those created here: another creator may have raced us to one (TopicAlreadyExists).
        await _wait_until_served(admin, settings.bootstrap, [s.name for s in specs])
        described = await admin.describe_topics([s.name for s in specs if result[s.name] == "exists"])
        actual = {d["topic"]: len(d["partitions"]) for d in described}
        wrong = [f"{s.name} has {actual[s.name]} partitions, settings say {s.partitions}"
                 for s in specs if s.name in actual and actual[s.name] != s.partitions]
        if wrong:
            raise TopicMismatch("topics exist with other partition counts: " + "; ".join(wrong) +
                             ". Delete them or set STREAMSCORE_PARTITIONS to match.")
    finally:
        await admin.close()
    return result
