"""Latency histograms with fixed buckets, and per-stage timings of the pipeline.

Fixed buckets (as Prometheus histograms have) keep the cost of an observation constant and the memory
bounded however long a worker runs; quantiles are read off the buckets, so they are exact to a bucket.

>>> h = LatencyHistogram()
>>> for ms in (1, 2, 3, 40):
...     h.observe(ms / 1000)
>>> h.count, round(h.sum, 3), h.quantile(0.5), h.quantile(0.99)
(4, 0.046, 0.0025, 0.05)
>>> t = StageTimings()
>>> with t.stage("decode"):
...     pass
>>> list(t.snapshot()), t.snapshot()["decode"]["count"]
(['decode'], 1)
"""

from __future__ import annotations

import bisect
import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

BUCKETS: tuple[float, ...] = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
"""Upper bounds in seconds, from 10 µs (one stage of one event) to a minute (event to score under lag)."""


class LatencyHistogram:
    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.count += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), ending with ``(inf, count)``: Prometheus' ``_bucket``."""
        out, running = [], 0
        for bound, n in zip((*self.buckets, math.inf), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the ``q`` quantile (the max for the +Inf bucket); ``None``
        before any observation."""
        if self.count == 0:
            return None
        rank = q * self.count
        for bound, running in self.cumulative():
            if running >= rank:
                return bound if math.isfinite(bound) else self.max
        return self.max  # pragma: no cover - the last bucket always holds the count

    def snapshot(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum": self.sum,
            "max": self.max,
            "mean": self.sum / self.count if self.count else None,
            "p50": self.quantile(0.5),
            "p95": self.quantile(0.95),
            "p99": self.quantile(0.99),
            "buckets": [[bound if math.isfinite(bound) else "+Inf", n] for bound, n in self.cumulative()],
        }


class StageTimings:
    """One :class:`LatencyHistogram` per named stage (``decode``, ``features``, ``score``, ...)."""

    def __init__(self) -> None:
        self.stages: dict[str, LatencyHistogram] = {}

    def observe(self, stage: str, seconds: float) -> None:
        histogram = self.stages.get(stage)
        if histogram is None:
            histogram = self.stages[stage] = LatencyHistogram()
        histogram.observe(seconds)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(name, time.perf_counter() - start)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: h.snapshot() for name, h in sorted(self.stages.items())}
