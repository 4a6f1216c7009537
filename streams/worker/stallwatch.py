"""The stall watch: a partition this worker owns that has records waiting and none processed for
``stall_after`` seconds is noticed, not left to wait in silence.

A worker was seen to say "Worker ready" after a rebalance and then process nothing of some partitions, with no
error: its fetch loop had dropped a fetch the rebalance interrupted, and faust's seek to the committed offsets did
not move a partition that had none (``docs/kafka.md``, "A rebalance drops a fetch"). That is fixed in the fetch
loop; this watch is the net under any other way a partition could go quiet. Every worker checks, every quarter of
``stall_after``, each owned partition's end offset (asked on a connection of its own: ``OffsetsReader``)
against the offset its processor expects next. A partition that has records waiting and made no progress for
``stall_after`` seconds of wall time is stalled: the worker logs what its consumer believes about it
(``_faust.consumer_state``), counts it in ``partitions_stalled``, and has its fetch loop read it again from
the offset due (``_FetchLoop.rewind``).

Wall time is right here and only here: this is the worker's liveness, and no output depends on it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from streams.kafka.fetch import OffsetsReader
from streams.worker import _faust
from streams.worker.batch import next_offset_due
from streams.worker.context import StreamApp
from streams.worker.feeds import run_on_every_worker

__all__ = ["StallDetector", "first_waiting", "register_stall_watch", "watch_for_stalls"]

log = logging.getLogger(__name__)


def first_waiting(due: int | None, earliest: int) -> int:
    """The first offset a partition has waiting: the one due, or its earliest if it was never processed or
    retention deleted the one due."""
    return earliest if due is None else max(due, earliest)


class StallDetector:
    """Which partitions have had records waiting, and no progress, for ``after`` seconds.

    >>> detector = StallDetector(after=30.0)
    >>> detector.observe(0.0, partition=0, due=5, earliest=0, end=9)   # records 5-8 wait: the clock starts
    False
    >>> detector.observe(20.0, partition=0, due=7, earliest=0, end=9)  # progress: it starts again
    False
    >>> detector.observe(49.0, partition=0, due=7, earliest=0, end=9)
    False
    >>> detector.observe(50.0, partition=0, due=7, earliest=0, end=9)  # 30 s waiting with no progress
    True
    >>> detector.observe(60.0, partition=1, due=None, earliest=4, end=4)  # nothing processed, nothing there
    False
    """

    def __init__(self, after: float) -> None:
        self.after = after
        self.since: dict[int, tuple[int | None, float]] = {}
        """Per partition, the offset due when it was last seen to progress (or to have nothing waiting), and when."""

    def observe(self, now: float, partition: int, due: int | None, earliest: int, end: int) -> bool:
        """Whether ``partition`` is stalled: ``due`` is the offset its processor expects next (None before any
        record), ``earliest`` and ``end`` the topic's bounds (``end`` is the offset the next record will get)."""
        waiting = end > first_waiting(due, earliest)
        seen = self.since.get(partition)
        if not waiting or seen is None or seen[0] != due:
            self.since[partition] = (due, now)
            return False
        return now - seen[1] >= self.after

    def restart(self, partition: int | None = None) -> None:
        """Forget ``partition`` (or every partition): after a rebalance or a remedy, its clock starts again."""
        if partition is None:
            self.since.clear()
        else:
            self.since.pop(partition, None)


async def watch_for_stalls(sa: StreamApp, stop: asyncio.Event) -> None:
    """Check the owned partitions of ``events`` until ``stop`` is set (:class:`StallDetector`)."""
    after = sa.settings.stall_after
    if after <= 0:
        return
    topic = sa.settings.topic("events")
    counters = sa.processor.counters
    detector = StallDetector(after)
    reader = OffsetsReader(sa.settings.bootstrap)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(1.0, after / 4))
                return
            except TimeoutError:
                pass
            try:
                await _check(sa, topic, detector, reader)
            except Exception:  # the watch must never stop the worker; it tries again next time
                log.warning("the stall watch could not check the partitions", exc_info=True)
                counters.inc("stall_watch_errors")
    finally:
        await reader.stop()


async def _check(sa: StreamApp, topic: str, detector: StallDetector, reader: OffsetsReader) -> None:
    app = sa.app
    if not _faust.consumer_settled(app):
        detector.restart()  # a rebalance or a recovery may take long: that is not a stall
        return
    owned = _faust.assigned_partitions(app, topic)
    if not owned:
        return
    bounds = await reader.bounds(topic, owned)
    now = time.monotonic()
    for partition in owned:
        earliest, end = bounds[partition]
        due = next_offset_due(sa, partition)
        if detector.observe(now, partition, due, earliest, end):
            start = first_waiting(due, earliest)
            sa.processor.counters.inc("partitions_stalled")
            log.warning("partition %s of %s stalled: records %s to %s wait and none was processed for %.0f s; "
                        "reading it again from %s; the consumer's state: %s", partition, topic, start, end - 1,
                        detector.after, start, _faust.consumer_state(app, topic))
            _faust.rewind(app, topic, partition, start)
            detector.restart(partition)


def register_stall_watch(sa: StreamApp) -> None:
    """Run the stall watch on every worker (off with ``stall_after`` 0)."""
    run_on_every_worker(sa.app, lambda stop: watch_for_stalls(sa, stop))
