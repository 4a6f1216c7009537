"""Talking to the broker as an administrator: is it there, and create the topics of DESIGN.md."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from streams.settings import Settings
from streams.topics import TopicSpec, topic_specs

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


def wait_until_ready(bootstrap: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(ping(bootstrap, timeout=2.0))
            return
        except BrokerUnreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


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
