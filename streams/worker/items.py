"""Every worker follows ``item-deltas`` into its processor's item table (``docs/items.md``).

The processor applies its own deltas (its requests' impressions, its labels) to its item table and sends them to
``item-deltas`` like any other output (the batch loop sends whatever it returns); this follower reads the whole
topic, from the beginning, on every worker (no consumer group, as for the model snapshots:
``streams/kafka/follow.py``) and hands every *other* process's record to
:meth:`~streams.core.itemside.ItemSide.apply`, which makes it visible by the event-time rule.

What it measures: ``item_deltas_received``; ``item_deltas_late`` (a delta that came after the worker's
item table had passed its ``visible_at``: scores between differ from a replay's), with the largest event-time
lateness in the ``item_visibility`` stage; the wall seconds from a delta's produce time to its arrival in the
``item_delivery`` stage (``streamscore_stage_seconds{stage=...}`` on ``/metrics``). A record that is not a delta
goes to ``dead-letter`` (code ``bad_item_delta``) and counts in ``dead_letter.bad_item_delta``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import faust

from features.itemstats import BadDelta, delta_origin
from streams.core.deadletter import Source
from streams.core.processor import Processor
from streams.core.records import DEAD_LETTER, ITEM_DELTAS, dead_letter_output
from streams.kafka.follow import follow_topic
from streams.settings import Settings
from streams.worker.feeds import run_on_every_worker

__all__ = ["ItemFeed", "register_item_feed"]

log = logging.getLogger(__name__)


class ItemFeed:
    """Applies records of ``item-deltas`` to a processor's item side, counting and timing them."""

    def __init__(self, processor: Processor, dead_letter: Any = None) -> None:
        if processor.items is None:
            raise ValueError("the processor has no item side (STREAMSCORE_ITEM_FEATURES is off)")
        self.items = processor.items
        self.counters = processor.counters
        self.timings = processor.timings
        self.dead_letter = dead_letter
        """``(raw, reason, source) -> None``: where a bad record goes (the worker sends it to ``dead-letter``)."""

    def apply_one(self, value: bytes, source: Source, produced_ms: int | None = None) -> None:
        if delta_origin(value) == self.items.origin:
            return  # this process made it, and applied it when it did
        try:
            lateness = self.items.apply(value)
        except BadDelta as exc:
            self.counters.inc("dead_letter")
            self.counters.inc("dead_letter.bad_item_delta")
            log.warning("dead-letter %s:%s@%s: %s", source.topic, source.partition, source.offset, exc)
            if self.dead_letter is not None:
                self.dead_letter(value, str(exc), source)
            return
        self.counters.inc("item_deltas_received")
        if lateness is not None:
            # Requests scored between its visible_at and now did without it: where live differs from replay.
            self.counters.inc("item_deltas_late")
            self.timings.observe("item_visibility", lateness)
        if produced_ms is not None and produced_ms > 0:
            self.timings.observe("item_delivery", max(0.0, time.time() - produced_ms / 1000))


def register_item_feed(app: faust.App, settings: Settings, processor: Processor) -> ItemFeed | None:
    """Make every worker follow ``item-deltas`` into ``processor``'s item table (nothing when item features are
    off). Bad records are sent to ``dead-letter``."""
    if processor.items is None:
        return None
    # This process's deltas are applied as it makes them: the feed skips them by this origin, new at every start
    # (after a restart, the deltas of the worker's former life are read from the topic like anyone else's).
    processor.items.origin = secrets.token_hex(8)
    topic = settings.topic(ITEM_DELTAS)

    sending: set[asyncio.Future[Any]] = set()  # kept until sent: a task nobody references may be collected

    def dead_letter(raw: bytes, reason: str, source: Source) -> None:
        out = dead_letter_output(raw, reason, "bad_item_delta", source)
        future = asyncio.ensure_future(app.producer.send(settings.topic(DEAD_LETTER), out.key, out.value, None, None,
                                                         None))
        sending.add(future)
        future.add_done_callback(sending.discard)

    feed = ItemFeed(processor, dead_letter)

    def apply(record: Any) -> None:
        source = Source(topic, record.partition, record.offset, record.key, None)
        feed.apply_one(record.value or b"", source, record.timestamp)

    run_on_every_worker(app, lambda stop: follow_topic(settings.bootstrap, topic, apply, stop, processor.counters,
                                                        "item_feed_errors"))
    return feed
