"""The item-vector trainer: reads the events as the workers do, and every ``item_vectors_every`` seconds of event
time ships a new signed version of the item vectors (``docs/items.md``, "Item vectors").

It runs off the hot path: in the live learner (``streams/learner/process.py``, which follows every partition of
``events``) and, in a replay, beside the processor (``streams/replay/driver.py``). Every record goes through the
same guard of event time as in the worker (one :class:`~streams.core.eventclock.PartitionClock` per partition),
so it learns from exactly the events the workers accept: a bad ``ts`` neither counts nor moves its clock.

**When a version is made, in event time.** Versions end on multiples of ``every``: when the first accepted
event at or after the next boundary ``B`` comes, the vectors are factorised from every event counted so far
(all before ``B``) and shipped with ``trained_until = B`` *before* that event is counted. A worker uses a
version only for requests at or after its ``trained_until`` (:meth:`features.itemvectors.ItemVectorTable.at`).
A replay therefore installs each version just before the first event it may serve, whatever the batch sizes;
live, the learner's boundary comes with the newest partition, and the vectors reach the workers a round trip
later (requests meanwhile use the version before: never a vector trained on events after the request).

>>> from streams.settings import Settings
>>> trainer = ItemVectorTrainer.from_settings(Settings(item_vectors_every=100.0, item_vectors_dim=2))
>>> def view(i, user, item, ts):
...     raw = f'{{"event_id":"e{i}","user_id":"{user}","ts":{ts},"type":"view","item_id":"{item}"}}'
...     return raw.encode(), Source("events", 0, i)
>>> shipped = [trainer.offer(*view(i, f"u{i % 4}", "abxy"[i % 4], 110 + i)) for i in range(40)]
>>> sum(map(len, shipped)), trainer.offer(*view(40, "u0", "a", 205))[0].trained_until
(0, 200.0)
>>> trainer.counters.snapshot()
{'item_vectors_events': 41, 'item_vectors_versions': 1}
"""

from __future__ import annotations

import logging
import math
from typing import Any

from models.cooccurrence import CoOccurrence
from models.itemvectors import ItemVectors, factorise
from models.snapshots import dump_snapshot
from streams.core.counters import Counters
from streams.core.deadletter import Source
from streams.core.eventclock import ClockRule, PartitionClock, Timed
from streams.events import Click, Conversion, Interaction, InvalidEvent, decode_event

__all__ = ["ITEM_VECTORS", "ItemVectorTrainer", "signed", "vector_params"]

log = logging.getLogger(__name__)

ITEM_VECTORS = "item_vectors"
"""The record key (snapshot name) of the item vectors on ``model-snapshots``."""


def signed(vectors: ItemVectors, key: bytes) -> bytes:
    """The signed snapshot of one version, as it goes on ``model-snapshots``."""
    return dump_snapshot(vectors, name=ITEM_VECTORS, version=vectors.version, key=key,
                         meta={"trained_until": vectors.trained_until, "items": len(vectors.ids),
                               "dim": vectors.dim})


def vector_params(settings: Any) -> dict[str, Any]:
    """What changes the vectors' values: part of the feature-set fingerprint (the feature log's ``schema``)."""
    return {"every": settings.item_vectors_every, "dim": settings.item_vectors_dim,
            "items": settings.item_vectors_items, "window": settings.item_vectors_window}


class ItemVectorTrainer:
    def __init__(self, counts: CoOccurrence, *, every: float, dim: int, max_items: int, clock_rule: ClockRule,
                 max_candidates: int = 500) -> None:
        self.counts = counts
        self.every = every
        self.dim = dim
        self.max_items = max_items
        self.clock_rule = clock_rule
        self.max_candidates = max_candidates
        self.clocks: dict[int, PartitionClock] = {}
        self.boundary: float | None = None
        """The ``trained_until`` of the next version (None before the first event)."""
        self.counters = Counters()
        self._read: dict[int, int] = {}
        """Per partition, the newest offset taken: a record read again (a reconnect reads from the start) is
        skipped, so it counts once."""

    @classmethod
    def from_settings(cls, settings: Any) -> ItemVectorTrainer:
        return cls(CoOccurrence(window=settings.item_vectors_window),
                   every=settings.item_vectors_every, dim=settings.item_vectors_dim,
                   max_items=settings.item_vectors_items, clock_rule=ClockRule.from_settings(settings),
                   max_candidates=settings.max_candidates)

    def offer(self, raw: bytes, source: Source) -> list[ItemVectors]:
        """Take one record of ``events``; returns the versions made before the events it releases count."""
        if source.offset <= self._read.get(source.partition, -1):
            return []
        self._read[source.partition] = source.offset
        try:
            event = decode_event(raw, key=source.key, max_candidates=self.max_candidates)
        except InvalidEvent:
            self.counters.inc("item_vectors_events_refused")  # the worker dead-letters it, with the reason
            return []
        clock = self.clocks.get(source.partition)
        if clock is None:
            clock = self.clocks[source.partition] = PartitionClock(self.clock_rule)
        made: list[ItemVectors] = []
        for decided in clock.offer(Timed(event.ts, source, raw, event)):
            if decided.reason is not None or decided.item.event is None:
                self.counters.inc("item_vectors_events_refused")
                continue
            accepted = decided.item.event
            if self.boundary is None:
                self.boundary = (math.floor(accepted.ts / self.every) + 1) * self.every
            elif accepted.ts >= self.boundary:
                made.append(self._train(math.floor(accepted.ts / self.every) * self.every))
            item_id = accepted.item_id if isinstance(accepted, Interaction | Click | Conversion) else None
            if item_id:
                self.counts.observe(accepted.user_id, item_id)
                self.counters.inc("item_vectors_events")
        return made

    def _train(self, until: float) -> ItemVectors:
        self.boundary = until + self.every
        # The version number is the event time it is trained until: a restarted learner, reading the events
        # again, makes the same numbers, and the workers keep what they have until a newer one comes.
        vectors = factorise(self.counts, dim=self.dim, max_items=self.max_items, version=int(until),
                            trained_until=until)
        self.counters.inc("item_vectors_versions")
        log.info("item vectors trained until %s: %d items x %d", until, len(vectors.ids), vectors.dim)
        return vectors
