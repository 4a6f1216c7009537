"""The worker's batch loop: each fetch of the events topic is processed whole, partition by partition.

faust's consumer hands every fetch of ``events`` to :func:`process_batch` as it arrives, in batches of at most
``batch_size`` (``_faust.deliver_fetches``), instead of making each record a faust ``Event`` for a ``Stream``,
which cost ~100 µs of faust machinery per event. Nothing waits to fill a batch: what arrived is processed at
once and its outputs sent at once.

A :func:`checkpoint` follows every ``batch_size`` events or ``checkpoint_every`` seconds: it takes the changed
rows (encoded then, so later events do not leak into them) and writes them while processing goes on, in
order: outputs acknowledged, then the changed rows' changelog records acknowledged and the rows written to
RocksDB in one write batch per partition, then the event clocks. The fetch loop acknowledges the offsets to
faust, which commits them, once the checkpoint is durable. The decoded user states and waiting requests stay
in memory between checkpoints (``streams/core/statecache.py``), one cache per owned partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import faust
from faust.types import TP

from features.state import decode_state
from streams.core.deadletter import Source
from streams.core.eventclock import PartitionClock
from streams.core.expiry import expired_users
from streams.core.gaps import skipped_offsets
from streams.core.labels import PENDING
from streams.core.records import SCORES
from streams.core.statecache import StateCache
from streams.kafka.fetch import earliest_offsets, read_range
from streams.ops.telemetry import WorkerTelemetry
from streams.worker import _faust
from streams.worker.changelog import stage_writes, write_staged
from streams.worker.context import StreamApp, Unsaved

__all__ = ["CLOCK_KEY_PREFIX", "Taken", "broker_time", "checkpoint", "clock_key", "index_pending_requests",
           "next_offset_due", "partition_states", "process_batch", "register_score_agent", "sweep_expired_users"]

log = logging.getLogger(__name__)

CLOCK_KEY_PREFIX = b"\xffclock/"
"""Each partition's event clock is kept in the ``pending`` table under this prefix and the partition number: a
0xff byte never occurs in UTF-8, so no request id can be such a key."""

YIELD_EVERY = 10
"""Events processed between two turns given to the event loop's other tasks. Processing no longer waits for its
checkpoints, so without these turns it holds the loop for a whole batch (~100 ms), and the model-snapshot
feed, which needs many short turns to read and load a snapshot, fell far behind: measured in ``make demo``,
prod was served at version 30 when the learner had published 60, and its AUC fell from 0.77 to 0.68."""

Fetch = Mapping[TP, Sequence[Any]]
"""aiokafka ``ConsumerRecord`` lists by partition, each in offset order."""


def clock_key(partition: int) -> bytes:
    return CLOCK_KEY_PREFIX + str(partition).encode()


def broker_time(record: Any) -> float | None:
    """A record's broker timestamp in seconds, or None when it has none (Kafka gives -1 ms)."""
    timestamp = getattr(record, "timestamp", None)
    return timestamp / 1000 if isinstance(timestamp, int | float) and timestamp > 0 else None


def states_of(sa: StreamApp, partition: int) -> StateCache:
    """The partition's cache of decoded states (``streams/core/statecache.py``), read from its stores."""
    cache = sa.states.get(partition)
    if cache is None:
        users, pending = (_faust.partition_db(table, partition) for table in (sa.user_state, sa.pending))
        cache = sa.states[partition] = StateCache(lambda user_id: users.get(user_id.encode()),
                                                  lambda request_id: pending.get(request_id.encode()))
    return cache


async def process_batch(sa: StreamApp, batch: Fetch) -> int:
    """Process one batch, partition by partition, and send its outputs (not awaited: :func:`checkpoint` does).

    Order matters for "nothing lost, nothing twice": outputs are acknowledged by the broker *before* the
    users' states are written, and the offsets are committed (when the fetch loop acknowledges them to faust)
    after both. So after a crash, a state that holds an event implies its outputs went out, and the processor
    skips the redelivered event; a state that does not hold it gets it again, outputs and all.
    """
    unsaved = sa.unsaved
    deliveries = unsaved.deliveries
    telemetry = sa.telemetry
    send = sa.app.producer.send
    topic_of = sa.topic_names
    unindexed = [tp.partition for tp in batch if tp.partition not in sa.indexed_partitions]
    for partition in unindexed:
        await index_pending_requests(sa, partition)
    never_processed = [p for p in unindexed if sa.processor.next_offset(p) is None]
    if never_processed:
        await _expect_earliest(sa, next(iter(batch)).topic, never_processed)
    count = 0
    for tp, records in batch.items():
        partition = tp.partition
        unsaved.partitions.add(partition)
        states = states_of(sa, partition)
        for record in records:
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            inputs: Sequence[tuple[bytes, Source]] = ((record.value or b"", Source(
                tp.topic, partition, record.offset, record.key or b"", broker_time(record))),)
            skipped = _skipped(sa, partition, record.offset)  # almost always empty: see streams/core/gaps.py
            if skipped:
                inputs = [*await _read_skipped(sa, tp.topic, partition, skipped), *inputs]
            for raw, source in inputs:
                for out in sa.processor.process_one(raw, source, states):
                    # faust's producer gives aiokafka's future, which resolves once the broker has the record.
                    delivery = cast("asyncio.Future[Any]", await send(topic_of[out.topic], out.key, out.value,
                                                                     None, None, None))
                    deliveries.append(delivery)
                    telemetry.observe_output(out.topic, out.key, out.value)
                    if out.topic == SCORES and source.timestamp is not None:
                        delivery.add_done_callback(partial(_observe_score, telemetry, source.timestamp))
        _record_lag(sa, tp, records[-1].offset)
    telemetry.sample_throughput()
    return count


def _observe_score(telemetry: WorkerTelemetry, produced: float, delivery: Any) -> None:
    """Event-to-score latency: from the event's record timestamp to the broker's acknowledgement of its score."""
    telemetry.event_to_score.observe(max(0.0, time.time() - produced))


def checkpoint(sa: StreamApp) -> asyncio.Future[None]:
    """Take what changed since the last checkpoint and start writing it, while processing goes on; the
    future resolves once it is durable (outputs acknowledged, then states and clocks written).

    The rows are taken (encoded) now, so later events do not leak into them; the writes wait for the previous
    checkpoint's, so checkpoints reach the store in order.
    """
    unsaved, sa.unsaved = sa.unsaved, Unsaved()
    sa.checkpoints += 1
    seq = sa.checkpoints
    partitions = sorted(unsaved.partitions)
    caches = {p: sa.states[p] for p in partitions if p in sa.states}
    started = time.perf_counter()
    taken = Taken(seq, partitions, caches, {p: c.pending.take(seq) for p, c in caches.items()},
                  {p: c.take(seq) for p, c in caches.items()},
                  {p: r for p in partitions if (r := sa.processor.clock_record(p)) is not None},
                  {p: t for p, t in sa.processor.max_ts.items() if p in unsaved.partitions})
    sa.telemetry.timings.observe("take", time.perf_counter() - started)
    job = asyncio.ensure_future(_write(sa, sa.last_checkpoint, unsaved.deliveries, taken))
    sa.last_checkpoint = job
    return job


@dataclass
class Taken:
    """One checkpoint's rows, encoded when it was taken."""

    seq: int
    partitions: list[int]
    caches: dict[int, StateCache]
    pending: dict[int, list[tuple[str, bytes | None]]]
    users: dict[int, list[tuple[str, bytes]]]
    clocks: dict[int, bytes]
    newest: dict[int, float]
    """Each partition's newest event time when taken: the time its expiry sweep goes by."""


async def _write(sa: StreamApp, previous: asyncio.Future[None] | None, deliveries: list[asyncio.Future[Any]],
                 taken: Taken) -> None:
    """Wait for the previous checkpoint and this one's outputs, then write its waiting requests, then its
    users, then each partition's event clock; then sweep expired users where due.

    Waiting requests before the users that index them, each acknowledged before the next: a crash between the
    two leaves the user's last events unapplied, and they are applied again, rewriting the same entries. The
    clock last, so that a saved clock means everything it decided is out and written: after a crash, an event
    up to the clock's last offset is skipped (its outputs and state went out before), and an event after it is
    decided again from the saved clock, which decides it the same way (``streams/core/eventclock.py``). Held
    events live in the clock, so committing their offsets loses none of them.
    """
    if previous is not None:
        await previous  # a failed checkpoint fails every one after it: the worker stops (streams/worker/_faust.py)
    telemetry = sa.telemetry
    with telemetry.timings.stage("deliver"):
        await _acknowledged(deliveries)
    started = time.perf_counter()
    app = sa.app
    await write_staged([await stage_writes(app, sa.pending, p, rows) for p, rows in taken.pending.items()])
    await write_staged([await stage_writes(app, sa.user_state, p, rows) for p, rows in taken.users.items()])
    await write_staged([await stage_writes(app, sa.pending, p, [(clock_key(p), record)])
                        for p, record in taken.clocks.items()])
    for partition, cache in taken.caches.items():
        if sa.states.get(partition) is cache:  # still owned
            cache.durable(taken.seq)
    for partition in taken.partitions:
        newest = taken.newest.get(partition)
        if partition in sa.states and newest is not None and sa.sweeper.due(partition, newest):
            try:
                await sweep_expired_users(sa, partition, newest, taken.seq)
            except Exception:  # maintenance: a failed sweep is retried at the next one, scoring goes on
                log.exception("sweeping expired users of partition %s failed", partition)
                sa.processor.counters.inc("sweep_errors")
    telemetry.timings.observe("state_write", time.perf_counter() - started)


async def _acknowledged(deliveries: list[asyncio.Future[Any]]) -> None:
    """Wait until the broker has every record sent; raise the first failure. Most are acknowledged by the time a
    checkpoint asks, and looking at each costs far less than ``asyncio.gather`` (a callback and a loop turn per
    record: ~20 µs an event, on the thread that processes)."""
    for delivery in deliveries:
        if delivery.done():
            delivery.result()
        else:
            await delivery


async def _expect_earliest(sa: StreamApp, topic: str, partitions: list[int]) -> None:
    """Partitions without a saved clock were never processed: their first record must be their earliest offset."""
    try:
        sa.first_offsets.update(await earliest_offsets(sa.settings.bootstrap, topic, partitions))
    except Exception:  # no figure: the first record is not checked, the ones after it are
        log.warning("partitions %s: their earliest offsets could not be read; their first records are not checked",
                    partitions, exc_info=True)


def _skipped(sa: StreamApp, partition: int, offset: int) -> range:
    """The offsets the consumer skipped before ``offset`` (``streams/core/gaps.py``)."""
    expected = sa.processor.next_offset(partition)
    if expected is None:
        expected = sa.first_offsets.pop(partition, None)
    return skipped_offsets(expected, offset)


async def _read_skipped(sa: StreamApp, topic: str, partition: int, skipped: range) -> list[tuple[bytes, Source]]:
    """The records at the ``skipped`` offsets, read again.

    Raises when they cannot be read: the worker stops rather than go on without them, and its restart (or the
    worker that takes the partition) finds the same gap and reads them.
    """
    log.warning("partition %s: offsets %s to %s never came from the consumer; reading them again", partition,
                skipped.start, skipped.stop - 1)
    counters = sa.processor.counters
    counters.inc("offset_gaps_filled")
    found = await read_range(sa.settings.bootstrap, topic, partition, skipped.start, skipped.stop)
    counters.inc("events_refetched", len(found))
    if len(found) < len(skipped):
        log.warning("partition %s: %s of offsets %s to %s are not in the topic (retention or transaction markers)",
                    partition, len(skipped) - len(found), skipped.start, skipped.stop - 1)
        counters.inc("offsets_missing", len(skipped) - len(found))
    return [(r.value or b"", Source(r.topic, r.partition, r.offset, r.key or b"", broker_time(r))) for r in found]


def _record_lag(sa: StreamApp, tp: TP, last_offset: int) -> None:
    """Messages behind the partition's end after ``last_offset``, from the highwater of the consumer's last fetch."""
    try:
        highwater = sa.app.consumer.highwater(tp)
    except Exception:  # no fetch yet, or the partition was just revoked: no figure rather than a wrong one
        return
    if highwater is not None:
        sa.telemetry.lag[tp.partition] = max(0, highwater - last_offset - 1)


def partition_states(sa: StreamApp, partition: int) -> Iterator[tuple[bytes, bytes]]:
    """(user_id, state bytes) of every user stored for ``partition`` on this worker."""
    return _faust.partition_rows(sa.user_state, partition)


def next_offset_due(sa: StreamApp, partition: int) -> int | None:
    """The offset the partition's next record should have (None: never processed, so its earliest): the
    processor's once the partition's first batch took its clock back, until then the clock saved in the store."""
    if partition in sa.indexed_partitions:
        return sa.processor.next_offset(partition)
    saved = _faust.partition_db(sa.pending, partition).get(clock_key(partition))
    position = PartitionClock.decode(sa.processor.clock_rule, saved).position
    return None if position is None else position + 1


async def index_pending_requests(sa: StreamApp, partition: int) -> None:
    """Once per assignment of ``partition``: take back its event clock, put its waiting requests in the
    processor's deadline index, and start its state cache afresh (the store may have changed while another
    worker owned it)."""
    sa.states.pop(partition, None)
    sa.processor.restore_clock(partition, _faust.partition_db(sa.pending, partition).get(clock_key(partition)))
    count = 0
    for key, blob in partition_states(sa, partition):
        state = decode_state(blob)
        if PENDING in state:
            sa.processor.index_pending(partition, key.decode(), state)
            count += len(state[PENDING])  # the user's index of its waiting requests
    sa.indexed_partitions.add(partition)
    log.info("partition %s: %s requests waiting for labels", partition, count)


async def sweep_expired_users(sa: StreamApp, partition: int, newest: float, seq: int) -> int:
    """Delete the partition's expired users, once checkpoint ``seq`` is written (the store is current up to
    it); those an event changed since are active again and kept. Return how many were deleted."""
    horizon = newest - sa.settings.allowed_lateness
    expired = [key.decode() for key in expired_users(partition_states(sa, partition), sa.processor.features,
                                                     horizon)]
    cache = sa.states.get(partition)
    if cache is not None:
        expired = cache.forget(expired, seq)
    if expired:
        await write_staged([await stage_writes(sa.app, sa.user_state, partition, [(k, None) for k in expired])])
    sa.processor.counters.inc("users_swept", len(expired))
    return len(expired)


def register_score_agent(sa: StreamApp) -> None:
    """Subscribe to ``events`` and have each fetch processed whole (:func:`process_batch`, :func:`checkpoint`).

    The agent is faust's subscription to the topic (so its assignor co-partitions the tables with it); its
    stream stays empty, since the consumer hands the topic's fetches to :func:`process_batch` instead. When the
    fetch loop ends, the state caches go, with their handles on the partitions' RocksDB: faust closes those
    databases next (a worker stopping once died of SIGSEGV at exit with the caches still holding them).
    """
    _faust.deliver_fetches(sa.app, sa.settings.topic("events"), partial(process_batch, sa), partial(checkpoint, sa),
                           sa.settings.batch_size, sa.settings.checkpoint_every, sa.states.clear,
                           partial(sa.processor.counters.inc, "partitions_reread"))

    @sa.app.agent(sa.topics["events"], name="score")
    async def score(stream: faust.StreamT) -> None:
        async for _ in stream:  # never delivered to: see above
            log.error("an event reached the score agent's stream; it is processed by the fetch loop instead")
