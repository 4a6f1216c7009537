"""The processor's item side: item features into each vector at scoring, item deltas out (``docs/items.md``).

The processor calls :meth:`ItemSide.extend` with a request's vectors (built from the user's state) to add the
item-side features as of the request's time, then sends :meth:`ItemSide.impressions`; for a label that marked
a candidate positive it sends :meth:`ItemSide.label`. Once the event is processed, the processor applies its own
deltas to its table (:meth:`ItemSide.apply`) and sends them to ``item-deltas``, which every worker follows for
the *other* workers' deltas (``streams/worker/items.py``: a record of its own :attr:`ItemSide.origin` is
skipped). So a replay, or a live run with one worker, sees every delta by the visibility rule alone, whatever
the transport; with several workers, another worker's delta counts once it has arrived (late ones counted).

>>> from streams.settings import Settings
>>> from streams.events import Request, Candidate
>>> side = ItemSide.from_settings(Settings(item_lag=10.0))
>>> req = Request("e1", "u", 100.0, "request", request_id="r1", candidates=(Candidate("a"),))
>>> vectors = [{"cand_position": 0.0}]
>>> keys = side.extend(vectors, req)
>>> keys, round(vectors[0]["xitem_rate"], 4)
([['item=a']], 0.01)
>>> out = side.impressions(req, keys); out.topic
'item-deltas'
>>> side.commit()  # what the processor does once the request went through
>>> side.extend([{}], Request("e2", "v", 110.0, "request", request_id="r2",
...                                                    candidates=(Candidate("a"),)))
[['item=a']]
>>> side.stats.lookup("item=a", 110.0)
(1.0, 0.0)
"""

from __future__ import annotations

from typing import Any

from features.base import Vector
from features.itemside import ItemSignals
from features.itemstats import (
    ALL,
    ItemStats,
    Rows,
    encode_delta,
    impression_rows,
    item_keys,
    label_rows,
    request_item_keys,
)
from streams.core.records import ITEM_DELTAS, Output, logged_vector
from streams.events import Event, Request
from streams.settings import Settings

__all__ = ["ItemSide"]


class ItemSide:
    def __init__(self, stats: ItemStats, signals: ItemSignals, origin: str = "") -> None:
        self.stats = stats
        self.signals = signals
        self.origin = origin
        """Written into every delta this process makes; a worker sets its own (``streams/worker/items.py``)."""
        self._made: list[tuple[str, float, Rows]] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> ItemSide:
        return cls(ItemStats(settings.item_lag, settings.item_half_life, settings.item_max_keys),
                   ItemSignals(settings.item_prior_weight))

    def params(self) -> dict[str, Any]:
        """What changes the item features' values: part of the feature-set fingerprint."""
        return {**self.signals.params(), "lag": self.stats.lag, "half_life": self.stats.half_life}

    def extend(self, vectors: list[Vector], request: Request) -> list[list[str]]:
        """Add each candidate's item-side features to its vector, as of ``request.ts``; return its keys."""
        self.stats.advance(request.ts)
        at = max(request.ts, self.stats.now)  # a late request sees what the table already shows
        if not vectors:
            return []
        keys_per_candidate = request_item_keys([c.item_id for c in request.candidates], vectors[0],
                                               [c.attrs for c in request.candidates])
        for values, x in zip(self.signals.request_values(self.stats, keys_per_candidate, at), vectors, strict=True):
            x.update(values)
        return keys_per_candidate

    def impressions(self, request: Request, keys_per_candidate: list[list[str]]) -> Output:
        return self._made_one(f"i:{request.request_id}", request.ts,
                              impression_rows([[*k, ALL] for k in keys_per_candidate]), request.request_id)

    def _made_one(self, delta_id: str, ts: float, rows: Rows, key: str) -> Output:
        made = (delta_id, ts + self.stats.lag, rows)
        self._made.append(made)
        return Output(ITEM_DELTAS, key.encode(), encode_delta(*made, self.origin))

    def commit(self) -> None:
        """Fold the deltas made since the last call: the event that made them went through."""
        for made in self._made:
            self.stats.add(*made)
        self._made.clear()

    def discard(self) -> None:
        """Forget the deltas made since the last call: the event that made them failed (it is dead-lettered)."""
        self._made.clear()

    def label(self, event: Event, entry: dict[str, Any] | None, item_id: str | None) -> Output | None:
        """The delta of a label on ``item_id`` of the waiting request ``entry`` (its logged vectors)."""
        if entry is None:
            return None
        for logged_id, x, _ in entry["items"]:
            if logged_id == item_id or (item_id is None and len(entry["items"]) == 1):
                return self._made_one(f"l:{event.event_id}", event.ts,
                                      label_rows([*item_keys(logged_id, logged_vector(x)), ALL]), event.event_id)
        return None

    def apply(self, blob: bytes) -> float | None:
        """Take one record of ``item-deltas`` (raises ``BadDelta`` for a malformed one); returns its lateness in
        event-time seconds if it came after the table had passed its ``visible_at``."""
        return self.stats.apply(blob)
