"""What a worker knows about itself, for ``/metrics``, the dashboard and ``streamscore top``.

Everything here is bounded (fixed histograms, short rings), so a worker that runs for months holds the same
few kilobytes. Wall-clock time appears only here: it measures the worker, it never decides an output.

>>> from streams.core.counters import Counters
>>> from streams.core.timings import StageTimings
>>> t = WorkerTelemetry(Counters(), StageTimings(), clock=lambda: 100.0)
>>> t.observe_output("dead-letter", None, b'{"error": "not JSON", "code": "not_json", "topic": "e", '
...                  b'"partition": 0, "offset": 7}')
>>> t.observe_output("scores", b"u1", b'{"request_id": "r1", "user_id": "u1", "ts": 5, "scores": [], "arm": "A", '
...                  b'"model": "prod", "model_version": 3}')
>>> t.dead_letters[0]["reason"], t.snapshot()["latest_scores"]["u1"]["model_version"]
('not JSON', 3)
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from streams.core.counters import Counters
from streams.core.records import DEAD_LETTER, FEATURE_LOG, SCORES
from streams.core.timings import LatencyHistogram, StageTimings

RECENT_DEAD_LETTERS = 20
THROUGHPUT_SAMPLES = 600
"""Cumulative counter samples, at most one a second: ten minutes of throughput."""
LATEST_SCORES = 500
"""Users whose latest score the worker remembers, for the dashboard's lookup."""
FEATURE_VALUES = 400
"""Recent values kept per feature for the dashboard's distributions."""
FEATURE_LOG_SAMPLE_EVERY = 5
"""Every how many feature-log records one is decoded for the distributions (decoding costs ~20 µs)."""
SHOWN_FEATURES = ("activity_events", "ctr_user", "decayed_86400s_all", "window_3600s", "recency_click_log_secs",
                  "cand_log_price")
"""Features whose distributions the dashboard draws (those the vectors hold)."""


class WorkerTelemetry:
    def __init__(self, counters: Counters, timings: StageTimings, clock: Callable[[], float] = time.time) -> None:
        self.counters = counters
        self.timings = timings
        """The processor's per-event stages; batch stages (``deliver``, ``state_write``) are added here too."""
        self.clock = clock
        self.event_to_score = LatencyHistogram()
        """From the request's record timestamp (when it was produced) to the score acknowledged by the broker."""
        self.lag: dict[int, int] = {}
        self.dead_letters: deque[dict[str, Any]] = deque(maxlen=RECENT_DEAD_LETTERS)
        self.throughput: deque[tuple[float, int, int]] = deque(maxlen=THROUGHPUT_SAMPLES)
        self.latest_scores: OrderedDict[bytes, bytes] = OrderedDict()
        """Score records by user id, as sent: decoded only when someone looks."""
        self.features: dict[str, deque[float]] = {}
        self._feature_logs = 0

    def observe_output(self, logical_topic: str, key: bytes | None, value: bytes) -> None:
        """Look at one output record: free for most, a decode for dead letters and a sample of the feature log."""
        if logical_topic == SCORES and key is not None:
            self.latest_scores[key] = value
            self.latest_scores.move_to_end(key)
            if len(self.latest_scores) > LATEST_SCORES:
                self.latest_scores.popitem(last=False)
        elif logical_topic == FEATURE_LOG:
            self._feature_logs += 1
            if (self._feature_logs - 1) % FEATURE_LOG_SAMPLE_EVERY == 0:  # the first, then every Nth
                self._sample_features(orjson.loads(value))
        elif logical_topic == DEAD_LETTER:
            record = orjson.loads(value)
            self.dead_letters.appendleft({"wall_ts": self.clock(), "reason": record.get("error"),
                                          **{k: record.get(k) for k in ("code", "topic", "partition", "offset")}})

    def _sample_features(self, record: Mapping[str, Any]) -> None:
        for candidate in record.get("features", ()):
            for name in SHOWN_FEATURES:
                value = candidate["x"].get(name)
                if isinstance(value, int | float):
                    self.features.setdefault(name, deque(maxlen=FEATURE_VALUES)).append(float(value))

    def sample_throughput(self) -> None:
        """Record the cumulative counts, at most once a second (called after each batch)."""
        now = self.clock()
        if not self.throughput or now - self.throughput[-1][0] >= 1.0:
            self.throughput.append((now, self.counters.get("events_in"), self.counters.get("requests_scored")))

    def snapshot(self) -> dict[str, Any]:
        return {
            "now": self.clock(),
            "counters": self.counters.snapshot(),
            "throughput": [list(sample) for sample in self.throughput],
            "event_to_score": self.event_to_score.snapshot(),
            "stages": self.timings.snapshot(),
            "lag": {str(p): n for p, n in sorted(self.lag.items())},
            "dead_letters": list(self.dead_letters),
            "features": {name: list(values) for name, values in sorted(self.features.items())},
            "latest_scores": {key.decode(errors="replace"): orjson.loads(value)
                              for key, value in self.latest_scores.items()},
        }
