"""Read every record of a topic, from the beginning, in every worker: the model snapshots, the learner's reports.

A plain consumer **without a consumer group**: a group would hand the topic's partitions to one worker only,
and every worker must see every record. Nothing is committed; each start reads the (compacted or small)
topic from the beginning, and the callers make re-reads harmless (versions, latest-wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from streams.core.counters import Counters

__all__ = ["POLL_SECONDS", "RETRY_SECONDS", "follow_topic"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
"""Longest wait for records before the stop event is looked at again: the bound on a clean shutdown's delay."""
RETRY_SECONDS = 2.0
"""Pause before reconnecting after the consumer failed (broker down, topic deleted, ...)."""


async def follow_topic(bootstrap: str, topic: str, apply: Callable[[ConsumerRecord[Any, Any]], Any],
                       stop: asyncio.Event, counters: Counters, error_counter: str) -> None:
    """Call ``apply(record)`` for every record of ``topic``, from the beginning, until ``stop`` is set.

    Never raises on broker trouble (a faust worker crashes when one of its tasks raises, and scoring matters
    more than what is followed): the error is logged, counted in ``counters[error_counter]``, and the
    consumer reconnects after :data:`RETRY_SECONDS`. Returns once ``stop`` is set, or raises
    ``CancelledError`` when cancelled; either way the consumer is closed.
    """
    while not stop.is_set():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Snapshots are a few hundred KB at most; one per fetch is plenty, but allow large models.
            max_partition_fetch_bytes=64 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        try:
            await consumer.start()
            # Without a group, subscribe() assigns every partition of the topic, including ones that appear
            # later (aiokafka's NoGroupCoordinator), and the reset policy starts them at the beginning.
            consumer.subscribe([topic])
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=int(POLL_SECONDS * 1000))
                for records in batches.values():
                    for record in records:
                        apply(record)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reading %s failed; retrying in %s s", topic, RETRY_SECONDS)
            counters.inc(error_counter)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
