"""Time since the last event, in event time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from features.aggregations._checks import finite

RecencySlot: TypeAlias = float
"""The largest event ``ts`` seen."""


@dataclass(frozen=True, slots=True)
class Recency:
    """Seconds of event time since the latest event.

    Slot: the largest ``ts`` seen (one float), or ``None`` if never updated. State per user: one float.
    A late event (``ts`` below the slot) leaves the slot unchanged.

    >>> rec = Recency()
    >>> rec.value(None, ts=5.0) is None
    True
    >>> slot = rec.update(None, ts=100.0)
    >>> slot = rec.update(slot, ts=90.0)  # late: the max is kept
    >>> slot
    100.0
    >>> rec.value(slot, ts=130.0)
    30.0
    >>> rec.value(slot, ts=95.0)  # before the latest event: clamped at 0
    0.0
    """

    def update(self, slot: RecencySlot | None, ts: float) -> RecencySlot:
        """Record an event at ``ts``; return the new slot."""
        ts = finite("ts", ts)
        if slot is None or ts > slot:
            return ts
        return slot

    def value(self, slot: RecencySlot | None, ts: float) -> float | None:
        """Seconds from the latest event to ``ts``, clamped at 0; ``None`` if never updated. Pure read."""
        if slot is None:
            return None
        return max(0.0, float(ts) - slot)
