"""The user's most recent items, with a count and the last time each was seen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from features.aggregations._checks import finite

ItemHistorySlot: TypeAlias = dict[str, list[float]]
"""``{item_id: [count, last_ts]}``; ``count`` is an int, ``last_ts`` a float."""


@dataclass(frozen=True, slots=True)
class ItemHistory:
    """The last ``max_items`` distinct items of a user: for each, how many events and the latest ``ts``.

    Slot: ``{item_id: [count, last_ts]}``, or ``None`` if never updated.

    **Bound:** at most ``max_items`` entries. When an update makes it larger, the entry with the smallest
    ``last_ts`` is evicted, ties broken by the smallest ``item_id``: the choice depends only on the slot's
    content, so a replay evicts the same items. A late event for a new item that is older than every item held
    is therefore evicted at once. ``count`` restarts at 1 if an evicted item comes back.

    >>> hist = ItemHistory(max_items=2)
    >>> slot = hist.update(None, "a", ts=10.0)
    >>> slot = hist.update(slot, "b", ts=20.0)
    >>> slot = hist.update(slot, "a", ts=30.0)
    >>> slot
    {'a': [2, 30.0], 'b': [1, 20.0]}
    >>> slot = hist.update(slot, "c", ts=40.0)  # evicts "b", the least recent
    >>> slot
    {'a': [2, 30.0], 'c': [1, 40.0]}
    >>> hist.lookup(slot, "a")
    (2, 30.0)
    >>> hist.lookup(slot, "b") is None
    True
    """

    max_items: int
    """Maximum number of items kept per user (>= 1)."""

    def __post_init__(self) -> None:
        if isinstance(self.max_items, bool) or not isinstance(self.max_items, int) or self.max_items < 1:
            raise ValueError(f"max_items must be an int >= 1, got {self.max_items!r}")

    def update(self, slot: ItemHistorySlot | None, item_id: str, ts: float) -> ItemHistorySlot:
        """Record an event on ``item_id`` at ``ts``; return the new slot (``slot`` is left as it was)."""
        ts = finite("ts", ts)
        slot = {} if slot is None else dict(slot)  # a shallow copy: the entry that changes is replaced
        entry = slot.get(item_id)
        if entry is None:
            slot[item_id] = [1, ts]
        else:
            slot[item_id] = [entry[0] + 1, ts if ts > entry[1] else entry[1]]
        while len(slot) > self.max_items:
            victim = min(slot, key=lambda i: (slot[i][1], i))
            del slot[victim]
        return slot

    def lookup(self, slot: ItemHistorySlot | None, item_id: str) -> tuple[int, float] | None:
        """``(count, last_ts)`` for ``item_id``, or ``None`` if it is not held. Pure read."""
        if slot is None:
            return None
        entry = slot.get(item_id)
        if entry is None:
            return None
        return int(entry[0]), float(entry[1])
