"""Python's garbage collector in the worker: collections made rarer, and every one timed.

A worker keeps many small objects alive (the decoded states of its users, ``streams/core/statecache.py``, and
the waiting requests' vectors), and a collection of the oldest generation walks all of them while nothing else
runs: a pause every request in flight waits out. Measured in the latency bench at 1,000 and 2,000 events/s,
with Python's default thresholds (700, 10, 10): a full collection every ~6 s, each 200-350 ms, none of which
found anything to free (our states hold no reference cycles; refcounting frees them). :data:`THRESHOLDS`
make the young generations collect ~70 times less often, so far fewer objects are promoted and a full
collection comes minutes apart rather than seconds; the young collections stay cheap (~1 ms).

Each collection is observed as the stage ``gc_gen<N>`` (on ``/metrics`` as
``streamscore_stage_seconds{stage="gc_gen2"}``), and one of more than :data:`SLOW_S` is logged.

>>> from streams.core.timings import StageTimings
>>> timings = StageTimings()
>>> watch = GcWatch(timings); watch.install()
>>> import gc; _ = gc.collect(2); watch.uninstall()
>>> timings.snapshot()["gc_gen2"]["count"] >= 1
True
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from streams.core.timings import StageTimings

__all__ = ["SLOW_S", "THRESHOLDS", "GcWatch", "tune_collector"]

log = logging.getLogger(__name__)

SLOW_S = 0.05
"""A collection this long is logged: it is a p99 of its own at any rate."""


THRESHOLDS = (50_000, 20, 10)
"""Allocations before a young collection; young collections before a middle one; middle before a full one (which
Python also defers until the objects promoted since the last one reach a quarter of the old generation)."""


def tune_collector() -> None:
    """Set :data:`THRESHOLDS` for this process (the worker's; tests and tools keep Python's defaults)."""
    gc.set_threshold(*THRESHOLDS)


class GcWatch:
    def __init__(self, timings: StageTimings) -> None:
        self.timings = timings
        self._started: float | None = None

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        seconds = time.perf_counter() - self._started
        self._started = None
        self.timings.observe(f"gc_gen{info['generation']}", seconds)
        if seconds > SLOW_S:
            log.info("garbage collection of generation %d took %.0f ms (%d objects collected)",
                     info["generation"], seconds * 1000, info.get("collected", 0))
