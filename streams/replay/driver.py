"""The in-process replay driver: feed events, read outputs; no broker (think Kafka Streams'
``TopologyTestDriver``).

It runs the very :meth:`~streams.core.processor.Processor.process_one` that the faust agent runs, with the user
states in a dict instead of RocksDB, so what it outputs is what a live worker outputs for the same events.

>>> from streams.settings import Settings
>>> driver = ReplayDriver(Settings())
>>> driver.pipe({"event_id": "e1", "user_id": "u1", "ts": 10, "type": "view", "item_id": "a"})
>>> driver.pipe({"event_id": "e2", "user_id": "u1", "ts": 20, "type": "request", "request_id": "r1",
...              "candidates": ["a", "b"]})
>>> [(r["item_id"], r["x"]["item_seen"]) for r in driver.read("feature-log")[0]["features"]]
[('a', 1.0), ('b', 0.0)]
>>> driver.pipe(b"not json")
>>> driver.read("dead-letter")[0]["code"]
'not_json'
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from models.learner import learner_from_settings
from streams.core.deadletter import Source
from streams.core.processor import Processor
from streams.core.records import EXAMPLES, Output
from streams.core.snapshots import SnapshotFeed
from streams.core.statecache import StateCache
from streams.core.vectortrainer import ITEM_VECTORS, ItemVectorTrainer, signed
from streams.settings import Settings


class ReplayDriver:
    """Feeds events through the worker's processor, and with ``learn=True`` its examples through the learner.

    Learning runs the live loop in event order: every example is learned as it is produced, every
    ``snapshot_every`` examples the learner's signed snapshots go through the same :class:`SnapshotFeed` the
    workers use, and later requests are scored by the new versions. Deterministic: no clock decides anything.
    """

    def __init__(self, settings: Settings, processor: Processor | None = None, source: str = "replay",
                 learn: bool = False, sink: Callable[[Output], None] | None = None, batch_size: int = 500) -> None:
        self.settings = settings
        self.processor = processor or Processor.default(settings)
        self.source = source
        self.batch_size = batch_size
        """Events per checkpoint, as a worker takes them: a changed user's state is encoded and written once per
        checkpoint (outputs do not depend on it; only the speed does)."""
        self._states: dict[str, bytes] = {}
        self._pending: dict[str, bytes] = {}
        self._cache = StateCache(self._states.get, self._pending.get)
        """The decoded states, kept across checkpoints as a worker keeps them (``streams/core/statecache.py``)."""
        self._in_batch = 0
        self._checkpoints = 0
        self.outputs: dict[str, list[Output]] = defaultdict(list)
        self.position = 0
        self.sink = sink
        """Where outputs go as they are made (e.g. files); without one they are kept in :attr:`outputs`."""
        self.counts: dict[str, int] = defaultdict(int)
        """Outputs per topic so far."""
        self.learner = learner_from_settings(settings) if learn else None
        self.feed = SnapshotFeed(self.processor.scorer, settings.snapshot_key.encode(), self.processor.counters,
                                 self.processor.item_vectors)
        self.vector_trainer = (ItemVectorTrainer.from_settings(settings)
                               if learn and self.processor.item_vectors is not None else None)
        """With ``learn=True``, the item vectors are trained beside the processor, as the live learner does: each
        version is installed just before the first event at or after its ``trained_until``."""

    @property
    def states(self) -> dict[str, bytes]:
        """Each user's state bytes, as the worker's table would hold them."""
        self._flush()
        return self._states

    @property
    def pending(self) -> dict[str, bytes]:
        """Requests waiting for labels, as the worker's ``pending`` table would hold them."""
        self._flush()
        return self._pending

    def pipe(self, event: dict[str, Any] | bytes, key: bytes | None = None, timestamp: float | None = None,
             partition: int = -1, offset: int | None = None) -> None:
        """Feed one event (a dict, or raw bytes as read from a topic or file); ``key`` is checked if given.

        A recording gives what the worker had: ``timestamp`` (the record's broker timestamp, seconds), and the
        ``partition`` and ``offset`` it was read from, so each partition has its own clock as live
        (``streams/core/eventclock.py``). Without them, the input is one partition (-1), at offset :attr:`position`.
        """
        raw = event if isinstance(event, bytes) else orjson.dumps(event)
        source = Source(self.source, partition, self.position if offset is None else offset, key, timestamp)
        if self.vector_trainer is not None:
            with self.processor.timings.stage("item_vectors"):
                for vectors in self.vector_trainer.offer(raw, source):
                    self.feed.apply_one(ITEM_VECTORS, signed(vectors, self.feed.key))
        self._emit(self.processor.process_one(raw, source, self._cache))
        self.position += 1
        self._in_batch += 1
        if self._in_batch >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        """A checkpoint: write the changed states and waiting requests, as a worker does."""
        with self.processor.timings.stage("state_write"):
            self._checkpoints += 1
            for request_id, blob in self._cache.pending.take(self._checkpoints):
                if blob is None:
                    self._pending.pop(request_id, None)
                else:
                    self._pending[request_id] = blob
            self._states.update(self._cache.take(self._checkpoints))
            self._cache.durable(self._checkpoints)
        self._in_batch = 0

    def _emit(self, outputs: list[Output]) -> None:
        for out in outputs:
            self.counts[out.topic] += 1
            if self.sink is None:
                self.outputs[out.topic].append(out)
            else:
                self.sink(out)
            if self.learner is not None and out.topic == EXAMPLES:
                with self.processor.timings.stage("learn"):
                    self.learner.learn_one(orjson.loads(out.value))
                if self.learner.due_snapshot():
                    with self.processor.timings.stage("snapshot"):
                        for name, blob in self.learner.snapshots(checkpoint=False):
                            self.feed.apply_one(name, blob)

    def pipe_all(self, events: Iterable[dict[str, Any] | bytes]) -> None:
        for event in events:
            self.pipe(event)

    def finish(self) -> None:
        """End of input: dead-letter the events a jump nothing confirmed still holds (see
        ``streams/core/eventclock.py``), then close every request still waiting for labels, as a final
        watermark would."""
        self._emit(self.processor.close_all(self._cache))
        self._flush()

    def report(self) -> dict[str, Any]:
        """The learner's progressive metrics, tripwire and experiment report (needs ``learn=True``)."""
        if self.learner is None:
            raise RuntimeError("this replay does not learn: create it with learn=True")
        return self.learner.report()

    def read(self, topic: str) -> list[Any]:
        """The decoded values output to ``topic`` so far, in order."""
        return [orjson.loads(o.value) for o in self.outputs[topic]]
