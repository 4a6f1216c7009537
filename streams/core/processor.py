"""Everything the score agent does to one event, with no broker in sight.

The faust agent (``streams/agents.py``) and the in-process replay driver call the very same
:meth:`Processor.process_one`, which is what makes a replay reproduce a live run.

Order of work for each event, which is the leakage rule: decode; ask the partition's event clock
(``streams/core/eventclock.py``) whether its time is plausible (a bad time is dead-lettered, a big jump waits for
the events after it); for a request, build the vectors from the user's state *as it is* (just before the
event), score, emit ``scores`` and ``feature-log`` (and, learning from clicks by default with fnw, the request's
fake negatives on ``examples``, one record for its candidates); only then let the event update the state.

>>> from streams.settings import Settings
>>> p = Processor.default(Settings())
>>> from streams.core.statecache import StateCache
>>> states = StateCache(lambda user_id: None)
>>> out = p.process_one(b'{"event_id":"e1","user_id":"u1","ts":5,"type":"request","request_id":"r1",'
...                     b'"candidates":["a","b"]}', Source("events", 0, 0), states)
>>> [(o.topic, o.key) for o in out]
[('scores', b'u1'), ('feature-log', b'u1'), ('item-deltas', b'r1'), ('examples', b'r1')]
>>> [(o.topic, o.key) for o in p.process_one(b"oops", Source("events", 0, 1), states)]
[('dead-letter', None)]
>>> p.counters.snapshot()
{'dead_letter': 1, 'dead_letter.not_json': 1, 'early_fake_negative': 2, 'events_in': 2, 'requests_scored': 1}
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from typing import Any

from features.builtin import ItemInteractions
from features.featureset import FeatureSet
from features.itemvectors import ItemVectorTable
from features.state import UserState
from models.experiment import scorer_from_settings
from models.scorer import Scorer
from streams.core.counters import Counters
from streams.core.deadletter import Source
from streams.core.early import EarlyFeed
from streams.core.eventclock import ClockRule, PartitionClock, Release, Timed
from streams.core.itemside import ItemSide
from streams.core.labels import LabelJoin, LabelRule
from streams.core.records import (
    FAKE_NEGATIVE,
    LoggedVector,
    Output,
    dead_letter_output,
    example_output,
    feature_log_output,
    score_output,
)
from streams.core.statecache import StateCache
from streams.core.timings import StageTimings
from streams.core.vectortrainer import vector_params
from streams.events import Event, InvalidEvent, Request, decode_event
from streams.settings import Settings

log = logging.getLogger(__name__)


class Processor:
    def __init__(self, settings: Settings, features: FeatureSet, scorer: Scorer,
                 counters: Counters | None = None, items: ItemSide | None = None,
                 item_vectors: ItemVectorTable | None = None) -> None:
        self.settings = settings
        self.features = features
        self.scorer = scorer
        self.items = items
        """The item side (``streams/core/itemside.py``): item features in, item deltas out; ``None``: off."""
        self.item_vectors = item_vectors
        """The item vectors received (``features/itemvectors.py``), for the ``xvec_`` features; ``None``: off."""
        self.counters = counters or Counters()
        self.timings = StageTimings()
        """Seconds per event spent in each stage: ``decode``, ``label_join``, ``features``, ``score``,
        ``update`` (the state after the event), and ``event`` (all of process_one)."""
        self.clock_rule = ClockRule.from_settings(settings)
        self.clocks: dict[int, PartitionClock] = {}
        """Per input partition, its guarded event-time clock (``streams/core/eventclock.py``): what moves it, and
        the events held until a jump is confirmed."""
        self.label_rule = LabelRule.of(settings)
        self.labels = LabelJoin(self.label_rule.window, settings.max_pending)
        self.early = EarlyFeed.of(settings)
        """Early records for the learner (``STREAMSCORE_LEARN_FROM=fnw``; off: ``wait``)."""
        self._deadlines: dict[int, list[tuple[float, str, str]]] = {}
        """Per partition, a heap of (deadline, user_id, request_id) of the requests waiting for labels."""

    @classmethod
    def default(cls, settings: Settings) -> Processor:
        items = ItemSide.from_settings(settings) if settings.item_features else None
        item_vectors = ItemVectorTable() if settings.item_vectors else None
        extra = {} if items is None else {"items": items.params()}
        if item_vectors is not None:
            extra["vectors"] = {**item_vectors.signals.params(), **vector_params(settings)}
        features = FeatureSet.default(settings.user_ttl, extra=extra or None)
        return cls(settings, features, scorer_from_settings(settings), items=items, item_vectors=item_vectors)

    @property
    def max_ts(self) -> dict[int, float]:
        """Newest accepted event time per input partition: the partition's watermark before lateness."""
        return {p: c.newest for p, c in self.clocks.items() if c.newest is not None}

    def _clock(self, partition: int) -> PartitionClock:
        clock = self.clocks.get(partition)
        if clock is None:
            clock = self.clocks[partition] = PartitionClock(self.clock_rule)
        return clock

    def clock_record(self, partition: int) -> bytes | None:
        """The partition's clock and held events as bytes, for the worker to store after the batch's states."""
        clock = self.clocks.get(partition)
        return None if clock is None else clock.encode()

    def next_offset(self, partition: int) -> int | None:
        """The offset the partition's next record should have: after the last one decided (None before any)."""
        clock = self.clocks.get(partition)
        return None if clock is None or clock.position is None else clock.position + 1

    def restore_clock(self, partition: int, blob: bytes | None) -> None:
        """Take back a partition's clock from :meth:`clock_record`'s bytes (after a restart or a rebalance)."""
        self.clocks[partition] = PartitionClock.decode(self.clock_rule, blob)

    def process_one(self, raw: bytes, source: Source, states: StateCache) -> list[Output]:
        """Outputs for one raw input record. Never raises: what cannot be processed is dead-lettered."""
        start = time.perf_counter()
        try:
            return self._process_one(raw, source, states, start)
        finally:
            self.timings.observe("event", time.perf_counter() - start)

    def _process_one(self, raw: bytes, source: Source, states: StateCache, start: float) -> list[Output]:
        self.counters.inc("events_in")
        clock = self._clock(source.partition)
        if clock.is_redelivery(source.offset):
            # Decided before the worker saved the partition's clock, which it does after the batch's outputs
            # and states: everything this record did is out already (see streams/worker/batch.py), its dead
            # letter too.
            self.counters.inc("events_redelivered")
            return []
        try:
            event = decode_event(raw, key=source.key, max_candidates=self.settings.max_candidates)
        except InvalidEvent as exc:
            clock.passed(source.offset)
            return [self._dead_letter(raw, exc.reason, exc.code, source)]
        finally:
            self.timings.observe("decode", time.perf_counter() - start)
        released = clock.offer(Timed(event.ts, source, raw, event))
        if not released or released[-1].item.source is not source:
            self.counters.inc("events_held")  # a jump waiting for the events after it (counted once)
        return [out for decided in released for out in self._decided(decided, states)]

    def _decided(self, decided: Release, states: StateCache) -> list[Output]:
        """Outputs of an event the partition's clock has decided on: refused (``bad_time``), or processed."""
        item, source = decided.item, decided.item.source
        if decided.reason is not None:
            return [self._dead_letter(item.raw, decided.reason, "bad_time", source)]
        event = item.event
        if event is None:  # held across a restart: decoded again (it was valid then)
            try:
                event = decode_event(item.raw, key=source.key, max_candidates=self.settings.max_candidates)
            except InvalidEvent as exc:
                return [self._dead_letter(item.raw, exc.reason, exc.code, source)]
        if decided.behind > self.settings.allowed_lateness:
            self.counters.inc("events_late")
        # Windows that close under the new watermark close first: the event may expire its own user.
        started = time.perf_counter()
        closed = self.close_due(source.partition, states)
        self.timings.observe("label_join", time.perf_counter() - started)
        before = states.snapshot(event.user_id)
        try:
            outputs = self._apply(event, item.raw, source, states)
            if self.items is not None:
                # The event went through: its item deltas count here at once (by the visibility rule), as they
                # will on every other worker that follows item-deltas (streams/core/itemside.py).
                self.items.commit()
            return closed + outputs
        except Exception as exc:
            if self.items is not None:
                self.items.discard()  # a bug must cost one event, not the worker, and leave no trace in the state
            states.restore(event.user_id, before)
            log.exception("internal error on event %s at %s", event.event_id, source)
            return [*closed, self._dead_letter(item.raw, f"internal error: {type(exc).__name__}: {exc}", "internal",
                                               source)]

    def _apply(self, event: Event, raw: bytes, source: Source, states: StateCache) -> list[Output]:
        state = states.get(event.user_id)
        position = source.offset
        if self.features.already_applied(state, position):
            # Redelivered after a crash: the state holds it, so its outputs were delivered before the
            # state was written (see streams/worker/batch.py). Doing it again would count it twice.
            self.counters.inc("events_redelivered")
            return []
        if self.features.expire(state, event.ts):
            self.counters.inc("users_expired")
        if isinstance(event, Request):
            outputs = self._score(event, state, states, source.partition)
        elif self.label_rule.matches(event):
            started = time.perf_counter()
            outputs = self._label(event, state, states, raw, source)
            self.timings.observe("label_join", time.perf_counter() - started)
        else:
            outputs = []
        started = time.perf_counter()
        self.features.update(state, event, position)
        self.timings.observe("update", time.perf_counter() - started)
        states.mark_dirty(event.user_id)
        return outputs

    def _label(self, event: Event, state: UserState, states: StateCache, raw: bytes, source: Source) -> list[Output]:
        result = self.labels.label(state, states.pending, event)
        self.counters.inc(f"labels_{result.outcome}")
        if result.outcome in ("unknown_request", "unknown_item"):
            return [self._dead_letter(raw, result.reason, f"label_{result.outcome}", source)]
        outputs = [self._example(e) for e in result.examples]
        if result.outcome == "positive":
            outputs.extend(self._early(self.early.at_label(str(getattr(event, "request_id", "")), states.pending,
                                                           result.item_id, event.ts)))
        if self.items is not None and result.outcome == "positive":
            request_id = getattr(event, "request_id", None)
            delta = self.items.label(event, states.pending.get(request_id) if request_id else None,
                                     getattr(event, "item_id", None))
            if delta is not None:
                outputs.append(delta)
        return outputs

    def close_due(self, partition: int, states: StateCache, watermark: float | None = None) -> list[Output]:
        """Close every request of ``partition`` whose window ended under the watermark (default: the
        partition's newest event time less the allowed lateness); ``math.inf`` closes them all."""
        if watermark is None:
            clock = self.clocks.get(partition)
            newest = None if clock is None else clock.newest
            watermark = (-math.inf if newest is None else newest) - self.settings.allowed_lateness
        heap = self._deadlines.get(partition)
        outputs: list[Output] = []
        while heap and heap[0][0] < watermark:
            _, user_id, request_id = heapq.heappop(heap)
            state = states.get(user_id)
            if not self.labels.is_waiting(state, request_id):
                continue  # evicted early, or the user expired
            outputs.extend(self._example(e) for e in self.labels.close(state, states.pending, request_id))
            states.mark_dirty(user_id)
            self.counters.inc("requests_closed")
        return outputs

    def close_all(self, states: StateCache) -> list[Output]:
        """End of input: decide on the events still held (a jump nothing confirmed), then close every waiting
        request, as under a final watermark (replays end complete)."""
        outputs = [out for partition in sorted(self.clocks) for decided in self.clocks[partition].flush()
                   for out in self._decided(decided, states)]
        return outputs + [out for partition in sorted(self._deadlines)
                          for out in self.close_due(partition, states, math.inf)]

    def index_pending(self, partition: int, user_id: str, state: UserState) -> None:
        """Put a user's waiting requests back in the deadline index (after a restart or a rebalance)."""
        for deadline, request_id in self.labels.deadlines(state):
            heapq.heappush(self._deadlines.setdefault(partition, []), (deadline, user_id, request_id))

    def forget_partition(self, partition: int) -> None:
        self._deadlines.pop(partition, None)
        self.clocks.pop(partition, None)

    def _example(self, example: dict[str, object]) -> Output:
        self.counters.inc(f"examples_{'positive' if example['y'] else 'negative'}")
        return example_output(example)

    def _early(self, records: list[dict[str, Any]]) -> list[Output]:
        for record in records:  # counted per candidate: a request's fake negatives are one record
            kind = record["kind"]
            self.counters.inc(f"early_{kind}", len(record["items"]) if kind == FAKE_NEGATIVE else 1)
        return [example_output(r) for r in records]

    def _score(self, request: Request, state: UserState, states: StateCache, partition: int) -> list[Output]:
        started = time.perf_counter()
        vectors = self.features.vectors(state, request)
        # Item stats as of the request, from deltas only (the request's own impression comes after its score).
        item_keys = None if self.items is None else self.items.extend(vectors, request)
        # Vectors trained on events before the request only; the version goes into the feature log.
        vectors_used = None if self.item_vectors is None else self.item_vectors.extend(
            vectors, request, state.get(ItemInteractions.name))
        scoring = time.perf_counter()
        self.timings.observe("features", scoring - started)
        scored = self.scorer.score_one(request.user_id, vectors)
        self.timings.observe("score", time.perf_counter() - scoring)
        logged = [LoggedVector(x) for x in vectors]  # encoded once: the feature log, the waiting request, examples
        versions = self.scorer.versions  # a dict made per call: once per request
        outputs = [score_output(request, scored),
                   feature_log_output(request, scored, logged, versions, self.features.fingerprint, vectors_used)]
        if self.items is not None and item_keys is not None:
            outputs.append(self.items.impressions(request, item_keys))
        self.counters.inc("requests_scored")
        started = time.perf_counter()
        evicted = self.labels.add_request(state, states.pending, request, vectors=logged, scores=scored.per_model,
                                          arm=scored.arm, served_model=scored.model, versions=versions,
                                          schema=self.features.fingerprint)
        outputs.extend(self._early(self.early.at_score(request.request_id, states.pending)))
        self.timings.observe("label_join", time.perf_counter() - started)
        if evicted:
            self.counters.inc("requests_evicted", len({e["request_id"] for e in evicted}))
        deadline = request.ts + self.labels.window
        heapq.heappush(self._deadlines.setdefault(partition, []), (deadline, request.user_id, request.request_id))
        return [*outputs, *(self._example(e) for e in evicted)]

    def _dead_letter(self, raw: bytes, reason: str, code: str, source: Source) -> Output:
        self.counters.inc("dead_letter")
        self.counters.inc(f"dead_letter.{code}")
        log.warning("dead-letter %s:%s@%s: %s", source.topic, source.partition, source.offset, reason)
        return dead_letter_output(raw, reason, code, source)
