"""Sliding event-time window count in a bounded number of aligned buckets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeAlias

from features.aggregations._checks import finite, positive

WindowCountSlot: TypeAlias = list[list[float]]
"""``[[bucket_start, count], ...]`` sorted by ``bucket_start``; ``count`` is an int."""


@dataclass(frozen=True, slots=True)
class WindowCount:
    """Count of events in a sliding event-time window, kept in ``buckets`` buckets of width
    ``w = window / buckets``.

    Bucket ``k`` covers event times ``[k * w, (k + 1) * w)``, with ``k = floor(ts / w)``: buckets are
    aligned to multiples of ``w``, not to the first event, so a replay fills the same buckets. The slot is a
    list of ``[bucket_start, count]`` (``bucket_start = k * w``, a float; ``count``, an int) sorted by start,
    or ``None`` if never updated.

    **Bound:** at most ``buckets`` entries per user. On every update, the buckets that fall out of the window
    relative to the newest ``ts`` seen (in the newest bucket ``n``) are dropped: only ``k > n - buckets`` are
    kept.

    **Late events:** an event whose bucket is still kept (``k > n - buckets``) is counted into it; an older
    one is ignored and the slot is returned unchanged.

    **Value and its approximation:** ``value(slot, ts)`` is the sum of the buckets whose start is
    ``> ts - window``, i.e. (comparing bucket indices, so that float rounding cannot move the boundary) the
    buckets ``k >= floor(ts / w) - buckets + 1``. That is the ``buckets`` newest buckets up to and including
    the one holding ``ts`` (plus any later ones, if ``ts`` is older than the newest event). Compared with the
    exact window ``(ts - window, ts]``, an event at ``e <= ts`` is:

    * always counted if ``ts - e < window - w``;
    * never counted if ``ts - e >= window``;
    * in between, counted iff ``e >= (floor(ts / w) - buckets + 1) * w`` (the start of the oldest counted
      bucket); so the effective window spans between ``window - w`` and ``window`` seconds, depending on where
      ``ts`` falls in its bucket. A bucket expires exactly at event time ``bucket_start + window``.

    >>> wc = WindowCount(window=60.0, buckets=6)  # 10 s buckets
    >>> slot = wc.update(None, ts=5.0)
    >>> slot = wc.update(slot, ts=12.0)
    >>> slot = wc.update(slot, ts=19.0)
    >>> slot
    [[0.0, 1], [10.0, 2]]
    >>> wc.value(slot, ts=59.9)
    3
    >>> wc.value(slot, ts=60.0)  # bucket [0, 10) expires at 0 + 60
    2
    >>> slot = wc.update(slot, ts=75.0)  # newest bucket 70: buckets 0 and 10 are dropped
    >>> slot
    [[70.0, 1]]
    >>> wc.update(slot, ts=15.0)  # late and out of the window: ignored
    [[70.0, 1]]
    >>> wc.update(slot, ts=25.0)  # late but bucket 20 is still in the window
    [[20.0, 1], [70.0, 1]]
    """

    window: float
    """Length of the window in seconds of event time (> 0)."""
    buckets: int
    """Number of buckets the window is divided into (>= 1); the state bound."""

    def __post_init__(self) -> None:
        positive("window", self.window)
        if isinstance(self.buckets, bool) or not isinstance(self.buckets, int) or self.buckets < 1:
            raise ValueError(f"buckets must be an int >= 1, got {self.buckets!r}")

    @property
    def width(self) -> float:
        """Width of a bucket in seconds: ``window / buckets``."""
        return self.window / self.buckets

    def update(self, slot: WindowCountSlot | None, ts: float) -> WindowCountSlot:
        """Count an event at ``ts``; return the new slot (``slot`` is left as it was; returned as is if the
        event is too late)."""
        ts = finite("ts", ts)
        width = self.window / self.buckets
        k = math.floor(ts / width)
        if not slot:
            return [[k * width, 1]]
        newest = slot[-1]
        last_index = round(newest[0] / width)  # bucket_start was written as k * width: rounding recovers k
        if k == last_index:
            # The common case, an event in the newest bucket: the slot was pruned when that bucket became the
            # newest, so there is nothing to drop (this skips a pass over every bucket).
            return [*slot[:-1], [newest[0], newest[1] + 1]]
        oldest_kept = max(last_index, k) - self.buckets + 1
        if k < oldest_kept:
            return slot
        # The slot is sorted: the buckets that left the window are a prefix, and a new newest bucket goes last.
        drop = 0
        while drop < len(slot) and round(slot[drop][0] / width) < oldest_kept:
            drop += 1
        kept = slot[drop:]
        if k > last_index:
            return [*kept, [k * width, 1]]
        for i, b in enumerate(kept):
            j = round(b[0] / width)
            if j == k:
                kept[i] = [b[0], b[1] + 1]
                break
            if j > k:
                kept.insert(i, [k * width, 1])
                break
        return kept

    def value(self, slot: WindowCountSlot | None, ts: float) -> int:
        """Events counted in the window ending at ``ts`` (see the class docstring). Pure read."""
        if not slot:
            return 0
        width = self.window / self.buckets
        first = math.floor(ts / width) - self.buckets + 1
        # round(start / width) >= first, without a division and a round per bucket: a start is k * width as
        # written, so start / width is within a hair of the integer k, and k >= first iff it is above first - 0.5.
        above = (first - 0.5) * width
        return int(sum([b[1] for b in slot if b[0] > above]))  # a list: no generator per call
