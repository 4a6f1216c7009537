"""The worker's batch loop: each fetch of the events topic is processed whole, partition by partition.

faust's consumer hands every fetch of ``events`` to :func:`process_fetch` as it arrives (``_faust.deliver_fetches``)
instead of making each record a faust ``Event`` for a ``Stream``, which cost ~100 µs of faust machinery per event.
Nothing waits to fill a batch: what arrived is processed at once, so a batch is small when the worker keeps up
(low latency) and large when it is behind (few checkpoints per event); ``batch_size`` bounds it.

Each batch ends with a checkpoint (:func:`process_batch`): outputs acknowledged, then the changed rows' changelog
records acknowledged and the rows written to RocksDB in one write batch per partition, then the event clocks;
the batch's offsets are acknowledged to faust, which commits them, last. The decoded user states and waiting
requests stay in memory between batches (``streams/core/statecache.py``), one cache per owned partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any, cast

import faust
from faust.types import TP

from features.state import decode_state
from streams.core.deadletter import Source
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

__all__ = ["CLOCK_KEY_PREFIX", "broker_time", "chunks", "clock_key", "index_pending_requests",
           "partition_states", "process_batch", "process_fetch", "register_score_agent", "sweep_expired_users"]

log = logging.getLogger(__name__)

CLOCK_KEY_PREFIX = b"\xffclock/"
"""Each partition's event clock is kept in the ``pending`` table under this prefix and the partition number: a
0xff byte never occurs in UTF-8, so no request id can be such a key."""

Fetch = Mapping[TP, Sequence[Any]]
"""aiokafka ``ConsumerRecord`` lists by partition, each in offset order."""


def clock_key(partition: int) -> bytes:
    return CLOCK_KEY_PREFIX + str(partition).encode()


def broker_time(record: Any) -> float | None:
    """A record's broker timestamp in seconds, or None when it has none (Kafka gives -1 ms)."""
    timestamp = getattr(record, "timestamp", None)
    return timestamp / 1000 if isinstance(timestamp, int | float) and timestamp > 0 else None


def chunks(fetch: Fetch, size: int) -> Iterator[dict[TP, Sequence[Any]]]:
    """Split a fetch into batches of at most ``size`` records that take turns between its partitions (a
    fetch can hold thousands of one partition's records, which must not hold the others back), each
    partition's records kept in order.

    >>> tp0, tp1 = TP("events", 0), TP("events", 1)
    >>> [{tp.partition: list(r) for tp, r in c.items()} for c in chunks({tp0: [1, 2, 3, 4, 5], tp1: [6]}, 2)]
    [{0: [1], 1: [6]}, {0: [2, 3]}, {0: [4, 5]}]
    """
    taken = {tp: 0 for tp in fetch}
    while True:
        left = [tp for tp in fetch if taken[tp] < len(fetch[tp])]
        if not left:
            return
        share = max(1, size // len(left))
        batch: dict[TP, Sequence[Any]] = {}
        for tp in left[:size]:
            start = taken[tp]
            batch[tp] = fetch[tp][start:start + share]
            taken[tp] = start + len(batch[tp])
        yield batch


async def process_fetch(sa: StreamApp, fetch: Fetch) -> bool:
    """Process one fetch in batches of at most ``batch_size`` records; checkpoint after ``batch_size`` events.
    Returns whether everything processed so far is durable (the fetch loop then acknowledges the offsets)."""
    unsaved = sa.unsaved
    for batch in chunks(fetch, sa.settings.batch_size):
        await process_batch(sa, batch)
        if unsaved.events >= sa.settings.batch_size:
            await checkpoint(sa)
    return not unsaved.events


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
    partitions = [tp.partition for tp in batch]
    unindexed = [p for p in partitions if p not in sa.indexed_partitions]
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
    unsaved.events += count
    telemetry.sample_throughput()
    return count


def _observe_score(telemetry: WorkerTelemetry, produced: float, delivery: Any) -> None:
    """Event-to-score latency: from the event's record timestamp to the broker's acknowledgement of its score."""
    telemetry.event_to_score.observe(max(0.0, time.time() - produced))


async def checkpoint(sa: StreamApp) -> None:
    """Make everything processed since the last checkpoint durable: wait for its outputs, then write the
    changed states and clocks (:func:`_write_states`), then sweep expired users where due."""
    unsaved = sa.unsaved
    telemetry = sa.telemetry
    with telemetry.timings.stage("deliver"):
        await asyncio.gather(*unsaved.deliveries)
    started = time.perf_counter()
    partitions = sorted(unsaved.partitions)
    await _write_states(sa, partitions)
    for partition in partitions:
        newest = sa.processor.max_ts.get(partition)
        if newest is not None and sa.sweeper.due(partition, newest):
            try:
                await sweep_expired_users(sa, partition, newest)
            except Exception:  # maintenance: a failed sweep is retried at the next one, scoring goes on
                log.exception("sweeping expired users of partition %s failed", partition)
                sa.processor.counters.inc("sweep_errors")
    telemetry.timings.observe("state_write", time.perf_counter() - started)
    sa.unsaved = Unsaved()


async def _write_states(sa: StreamApp, partitions: list[int]) -> None:
    """Write what changed: waiting requests, then users, then each partition's event clock.

    Waiting requests before the users that index them, each acknowledged before the next: a crash between the
    two leaves the user's last events unapplied, and they are applied again, rewriting the same entries. The
    clock last, so that a saved clock means everything it decided is out and written: after a crash, an event
    up to the clock's last offset is skipped (its outputs and state went out before), and an event after it is
    decided again from the saved clock, which decides it the same way (``streams/core/eventclock.py``). Held
    events live in the clock, so committing their offsets loses none of them.
    """
    app = sa.app
    caches = [(p, sa.states[p]) for p in partitions if p in sa.states]
    await write_staged([await stage_writes(app, sa.pending, p, c.pending.dirty()) for p, c in caches])
    user_rows = {p: c.dirty() for p, c in caches}
    await write_staged([await stage_writes(app, sa.user_state, p, user_rows[p]) for p, _ in caches])
    for p, cache in caches:
        cache.written(user_rows[p])
    clocks = []
    for partition in partitions:
        record = sa.processor.clock_record(partition)
        if record is not None:
            clocks.append(await stage_writes(app, sa.pending, partition, [(clock_key(partition), record)]))
    await write_staged(clocks)


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


async def sweep_expired_users(sa: StreamApp, partition: int, newest: float) -> int:
    """Delete the partition's expired users (after a checkpoint: the store is current); return how many."""
    horizon = newest - sa.settings.allowed_lateness
    expired = expired_users(partition_states(sa, partition), sa.processor.features, horizon)
    if expired:
        await write_staged([await stage_writes(sa.app, sa.user_state, partition, [(k, None) for k in expired])])
        cache = sa.states.get(partition)
        if cache is not None:
            cache.forget([key.decode() for key in expired])
    sa.processor.counters.inc("users_swept", len(expired))
    return len(expired)


def register_score_agent(sa: StreamApp) -> None:
    """Subscribe to ``events`` and have each fetch processed whole (:func:`process_fetch`).

    The agent is faust's subscription to the topic (so its assignor co-partitions the tables with it); its
    stream stays empty, since the consumer hands the topic's fetches to :func:`process_fetch` instead.
    """
    _faust.deliver_fetches(sa.app, sa.settings.topic("events"), lambda fetch: process_fetch(sa, fetch),
                           lambda: checkpoint(sa), sa.settings.checkpoint_every)

    @sa.app.agent(sa.topics["events"], name="score")
    async def score(stream: faust.StreamT) -> None:
        async for _ in stream:  # never delivered to: see above
            log.error("an event reached the score agent's stream; it is processed by the fetch loop instead")
