"""Exponentially decayed count in event time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeAlias

from features.aggregations._checks import finite, positive

DecayedCountSlot: TypeAlias = list[float]
"""``[value, last_ts]``: the decayed count as of ``last_ts``, the largest event ``ts`` seen."""


@dataclass(frozen=True, slots=True)
class DecayedCount:
    """Exponentially decayed count: each event weighs ``weight * 2 ** (-age / half_life)``.

    Slot: ``[value, last_ts]`` (two floats), or ``None`` if never updated. State per user: two floats.

    * An event at ``ts >= last_ts`` decays the value to ``ts``, then adds ``weight``; ``last_ts`` becomes
      ``ts``.
    * An out-of-order event (``ts < last_ts``, e.g. within the allowed lateness) adds
      ``weight * 2 ** (-(last_ts - ts) / half_life)`` and keeps ``last_ts``, so the result does not depend on
      the arrival order, up to float rounding.
    * :meth:`value` at ``ts < last_ts`` returns the value at ``last_ts``: it never extrapolates backwards.

    Only event time is used; the decay factor is always ``math.pow(2.0, -dt / half_life)``.

    >>> dc = DecayedCount(half_life=10.0)
    >>> slot = dc.update(None, ts=100.0)
    >>> slot
    [1.0, 100.0]
    >>> dc.value(slot, ts=110.0)  # one half-life later
    0.5
    >>> slot = dc.update(slot, ts=110.0, weight=2.0)
    >>> slot
    [2.5, 110.0]
    >>> slot = dc.update(slot, ts=100.0)  # late by one half-life: adds 0.5, keeps last_ts
    >>> slot
    [3.0, 110.0]
    >>> dc.value(slot, ts=90.0)  # before last_ts: the value at last_ts
    3.0
    >>> dc.value(None, ts=90.0)
    0.0
    """

    half_life: float
    """Seconds of event time after which an event's weight has halved (> 0)."""

    def __post_init__(self) -> None:
        positive("half_life", self.half_life)

    def update(self, slot: DecayedCountSlot | None, ts: float, weight: float = 1.0) -> DecayedCountSlot:
        """Add an event of ``weight`` at event time ``ts``; return the new slot (``slot`` is left as it was)."""
        # A finite float passes as it is (the check and conversion of finite(), without its call: this runs for
        # every counter of every event).
        if type(ts) is not float or not math.isfinite(ts):
            ts = finite("ts", ts)
        if type(weight) is not float or not math.isfinite(weight):
            weight = finite("weight", weight)
        if slot is None:
            return [weight, ts]
        value, last_ts = slot[0], slot[1]
        if ts >= last_ts:
            return [value * math.pow(2.0, -(ts - last_ts) / self.half_life) + weight, ts]
        return [value + weight * math.pow(2.0, -(last_ts - ts) / self.half_life), last_ts]

    def value(self, slot: DecayedCountSlot | None, ts: float) -> float:
        """The decayed count as of event time ``ts`` (``0.0`` if never updated). Pure read."""
        if slot is None:
            return 0.0
        value, last_ts = slot[0], slot[1]
        if ts <= last_ts:
            return float(value)
        return value * math.pow(2.0, -(ts - last_ts) / self.half_life)
