"""Every use of faust's (and, through faust, aiokafka's) private internals, in one place.

The worker needs a few things faust does not offer publicly: take each fetch of the events topic whole instead
of event by event (:func:`deliver_fetches`), read and write one partition's RocksDB directly, with the changelog
offset persisted in the same write batch, and read the group member id of faust's consumer. Each is a small
function here, so the rest of the worker speaks to faust only through its public API and these names, and a faust or
aiokafka upgrade that moves an internal breaks one module (and ``tests/unit/test_adapters.py``, which checks
on the real classes that every internal used here still exists).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import rocksdict
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

__all__ = [
    "FAUST_KEY_PREFIX",
    "Checkpoint",
    "FetchHandler",
    "app_tasks",
    "assigned_partitions",
    "changelog_topic_name",
    "chunks",
    "consumer_settled",
    "consumer_state",
    "deliver_fetches",
    "member_id",
    "partition_db",
    "partition_rows",
    "rewind",
    "write_partition",
]

log = logging.getLogger(__name__)

FetchHandler = Callable[[Mapping[TP, Sequence[Any]]], Awaitable[Any]]
"""Processes one batch of the events topic, as aiokafka ``ConsumerRecord`` lists by partition."""
Checkpoint = Callable[[], "asyncio.Future[None]"]
"""Starts making everything the handler processed so far durable; the future resolves once it is."""

FAUST_KEY_PREFIX = b"__faust"
"""faust keeps its own bookkeeping (the persisted changelog offset) in the same RocksDB as the table's keys."""

def partition_rows(table: Any, partition: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every row the table stores for ``partition`` on this worker, faust's own keys left out
    (faust has no public per-partition iterator)."""
    db = table.data._db_for_partition(partition)
    return ((key, blob) for key, blob in db.items() if not key.startswith(FAUST_KEY_PREFIX))


def changelog_topic_name(table: Any) -> str:
    return str(table.changelog_topic.get_topic_name())


def member_id(app: Any) -> str | None:
    """The group member id of a running faust app's consumer (faust does not expose it publicly)."""
    try:
        return str(app.consumer._thread._ensure_consumer()._coordinator.member_id)
    except AttributeError:
        return None


def app_tasks(app: Any) -> list[Any]:
    """The functions registered with ``@app.task`` (for tests: faust keeps them privately)."""
    return list(app._app_tasks)


def assigned_partitions(app: Any, topic: str) -> list[int]:
    """The partitions of ``topic`` assigned to this worker's consumer (aiokafka's view, which faust mirrors)."""
    return sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)


def rewind(app: Any, topic: str, partition: int, offset: int) -> None:
    """Have the fetch loop read ``partition`` again from ``offset`` (``_FetchLoop.rewind``); nothing to do when no
    fetch loop runs (it starts at the committed offsets)."""
    loop = getattr(app.consumer, "fetch_loop", None)
    if loop is not None:
        loop.rewind(TP(topic, partition), offset)


def consumer_settled(app: Any) -> bool:
    """Whether the consumer is flowing, neither in a rebalance nor recovering tables."""
    return bool(app.consumer.flow_active) and not app.rebalancing and not app.in_recovery


def partition_db(table: Any, partition: int) -> Any:
    """The table's RocksDB (an ``rocksdict.Rdict`` in raw mode) for ``partition``, opened if needed."""
    return table.data._db_for_partition(partition)


def write_partition(table: Any, partition: int, rows: Iterable[tuple[bytes, bytes | None]],
                    changelog_offset: int | None) -> None:
    """Write ``rows`` (``None`` deletes) to the table's partition as one RocksDB write batch, with the changelog
    offset they were acknowledged up to as faust's persisted offset, so the two are atomic: after a crash the
    store holds every row up to that offset, and faust's recovery replays the changelog from there."""
    batch = rocksdict.WriteBatch(raw_mode=True)
    for key, value in rows:
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
    if changelog_offset is not None:
        batch.put(table.data.offset_key, str(changelog_offset).encode())
    partition_db(table, partition).write(batch)


def deliver_fetches(app: Any, topic: str, handler: FetchHandler, checkpoint: Checkpoint, batch_size: int,
                    checkpoint_every: float, on_end: Callable[[], None],
                    on_rewind: Callable[[int], None] | None = None) -> None:
    """Make ``app``'s consumer hand each fetch of ``topic`` to ``handler`` whole (in batches of at most
    ``batch_size`` records), instead of turning each record into a faust ``Event`` for a ``Stream`` (about
    100 µs of faust machinery per event, measured in ``bench/``). Records of other topics (table changelogs of
    standbys, faust's own) go the usual way.

    The loop calls ``checkpoint`` after ``batch_size`` records, when the oldest record not checkpointed is
    ``checkpoint_every`` seconds old, when the flow stops (a rebalance) and when the worker stops; it holds the
    records' offsets back from faust's commits until the checkpoint's future says they are durable. ``on_end``
    runs when the loop ends (a stop, or faust restarting it at a rebalance), after the last checkpoint;
    ``on_rewind(n)`` when it makes the consumer read ``n`` partitions again (``_FetchLoop.rewind``).

    Call before the consumer is created (``app.consumer`` is made on first use). The topic must still be
    subscribed through faust (an agent on it), so the assignor co-partitions the tables with it.
    """
    base = type(app.transport).Consumer

    class FetchConsumer(base):  # type: ignore[misc, valid-type]  # a class chosen at run time
        async def _drain_messages(self, fetcher: Any) -> None:
            try:
                await _FetchLoop(self, topic, handler, checkpoint, batch_size, checkpoint_every,
                                 on_rewind).run(fetcher)
            finally:
                on_end()

    app.transport.Consumer = FetchConsumer


def consumer_state(app: Any, topic: str) -> dict[str, Any]:
    """What faust's and aiokafka's consumers believe about ``topic``'s partitions, and where the fetch loop is:
    for the log line of a partition that stalled (``streams/worker/stallwatch.py``). Never raises."""
    state: dict[str, Any] = {}

    def partitions(tps: Any) -> list[int]:
        return sorted(tp.partition for tp in (tps or ()) if tp.topic == topic)

    try:
        consumer = app.consumer
        state.update(flow_active=consumer.flow_active, active=partitions(consumer._active_partitions),
                     paused=partitions(consumer._paused_partitions),
                     buffered=partitions(consumer._buffered_partitions), assigned=partitions(consumer.assignment()),
                     read=dict(sorted((tp.partition, o) for tp, o in consumer._read_offset.items()
                                      if tp.topic == topic)),
                     committed=dict(sorted((tp.partition, o) for tp, o in consumer._committed_offset.items()
                                           if tp.topic == topic)),
                     unacked=len(consumer._unacked_messages))
        loop = getattr(consumer, "fetch_loop", None)
        if loop is not None:
            state.update(loop_at=loop.at, loop_turns=loop.turns, loop_idle_s=round(time.monotonic() - loop.since, 1))
        inner = consumer._thread._consumer
        assignment = inner._subscription.subscription.assignment
        fetcher = inner._fetcher
        state["aiokafka"] = {
            tp.partition: {"paused": st.paused, "position": st._position, "status": str(st._status),
                           "highwater": st.highwater, "buffered": tp in fetcher._records}
            for tp, st in ((tp, assignment.state_value(tp)) for tp in assignment.tps) if tp.topic == topic}
        state["reassigning"] = inner._subscription.reassignment_in_progress
    except Exception as error:  # a diagnostic: what could be read is returned, with why the rest could not
        state["error"] = repr(error)
    return state


def chunks(fetch: Mapping[TP, Sequence[Any]], size: int) -> Iterator[dict[TP, Sequence[Any]]]:
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


class _FetchLoop:
    """faust's fetch loop (``Consumer._drain_messages``), except that a fetch of one topic goes to a handler.

    The rest is kept: wait for flow (a rebalance stops it), fetch the active partitions only, drop a fetch made
    before a rebalance (the consumer seeks back to the committed offsets), commit every ``broker_commit_every``
    acks. Unlike faust's loop, no record of the topic is dropped for being older than the newest read: the
    processor knows a redelivery by its offset (``streams/core/eventclock.py``).

    Checkpoints are written while the loop goes on processing (their futures resolve in order). Until one
    resolves, a stand-in message of its records is "unacked", so a rebalance waits (``Consumer.wait_empty``)
    until they are durable before it commits and hands the partitions over.
    """

    def __init__(self, consumer: Any, topic: str, handler: FetchHandler, checkpoint: Checkpoint, batch_size: int,
                 checkpoint_every: float, on_rewind: Callable[[int], None] | None = None) -> None:
        self.consumer = consumer
        self.topic = topic
        self.handler = handler
        self.checkpoint = checkpoint
        self.batch_size = batch_size
        self.checkpoint_every = checkpoint_every
        self.on_rewind = on_rewind
        self.held: dict[TP, tuple[int, int]] = {}
        """Per partition, the first and last offset processed since the last checkpoint."""
        self.held_events = 0
        self.held_since: float | None = None
        self.stand_in: Any = None
        self.last: asyncio.Future[None] | None = None
        """The newest checkpoint's future (each waits for the one before it)."""
        self.rewinds: dict[TP, int] = {}
        """Per partition, an offset to read it again from once the consumer flows (:meth:`rewind`)."""
        self.at = "start"
        """Where the loop is (or waits), and since when, with how many turns so far: for :func:`consumer_state`."""
        self.since = time.monotonic()
        self.turns = 0
        consumer.fetch_loop = self

    def _at(self, where: str) -> None:
        self.at, self.since = where, time.monotonic()

    async def run(self, fetcher: Any) -> None:
        consumer = self.consumer
        consumer_stopped, fetcher_stopped = consumer._stopped.is_set, fetcher._stopped.is_set
        commit_every = consumer._commit_every
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.turns += 1
                self._raise_if_failed()
                if self.rewinds and consumer.flow_active:
                    self._at("rewind")
                    await self._apply_rewinds()
                if self.held and not consumer.flow_active:  # a rebalance: make everything durable first
                    self._at("checkpoint before a rebalance")
                    await self._finish(self._checkpoint())
                elif self.held and self._held_for() >= self.checkpoint_every:
                    self._checkpoint()
                timeout = 1.0 if not self.held else max(0.0, self.checkpoint_every - self._held_for())
                self._at("fetch")
                records, active = await consumer._wait_next_records(timeout)
                if not records or consumer.should_stop:
                    await consumer.sleep(0)
                    continue
                if not consumer.flow_active:
                    self._dropped(records)
                    self._at("seek")
                    await consumer.perform_seek()
                    continue
                usable = {tp: recs for tp, recs in records.items()
                          if recs and (active is None or tp in active or tp in consumer._buffered_partitions)}
                self._dropped({tp: recs for tp, recs in records.items() if tp not in usable})
                ours = {tp: recs for tp, recs in usable.items() if tp.topic == self.topic}
                self._at("process")
                for batch in chunks(ours, self.batch_size):
                    self._hold(batch)
                    await self._finish(self.handler(batch))
                    if self.held_events >= self.batch_size:
                        self._checkpoint()
                self._at("other topics")
                for tp, recs in usable.items():
                    if tp.topic != self.topic:
                        await _deliver_each(consumer, tp, recs)
                if commit_every is not None and consumer._n_acked >= commit_every:
                    consumer._n_acked = 0
                    self._at("commit")
                    await consumer.commit()
        except asyncio.CancelledError:
            # A stop or a rebalance: what was processed is made durable before the loop ends.
            self._at("cancelled")
            if self.held:
                self._checkpoint()
            if self.last is not None:
                await self._finish(self.last)
            raise
        except consumer.consumer_stopped_errors:
            if not consumer.transport.app.should_stop:
                raise
        except Exception:
            log.exception("the fetch loop failed")
            raise

    def rewind(self, tp: TP, offset: int) -> None:
        """Have ``tp`` read again from ``offset`` once the consumer flows, if it is still assigned then and its
        position is past ``offset`` (never forward: that would skip records). The records read again that were
        processed before are skipped by the processor, by their offsets."""
        self.rewinds[tp] = min(offset, self.rewinds.get(tp, offset))

    def _dropped(self, records: Mapping[TP, Sequence[Any]]) -> None:
        """Records of the topic a rebalance makes the loop drop are read again (:meth:`rewind`).

        faust's answer, a seek to the committed offsets once the rebalance is over, does not move a partition
        that has no committed offset yet. Its records were then never read again, and, when no later record came
        to reveal the gap (``streams/core/gaps.py``), never processed: seen with the last records of a killed
        worker's partitions, which the survivor fetched while the group rebalanced (``docs/kafka.md``)."""
        for tp, recs in records.items():
            if tp.topic == self.topic and recs:
                self.rewind(tp, recs[0].offset)

    async def _apply_rewinds(self) -> None:
        consumer = self.consumer
        rewinds, self.rewinds = self.rewinds, {}
        assigned = consumer.assignment()
        due = {}
        for tp, offset in rewinds.items():
            if tp in assigned:
                position = await consumer.position(tp)
                if position is not None and position > offset:
                    due[tp] = offset
        if due:
            log.info("reading partitions again from offsets %s (records a rebalance dropped, or the stall watch)",
                     {tp.partition: offset for tp, offset in sorted(due.items())})
            await consumer.seek_wait(due)
            if self.on_rewind is not None:
                self.on_rewind(len(due))

    def _held_for(self) -> float:
        return 0.0 if self.held_since is None else time.monotonic() - self.held_since

    def _raise_if_failed(self) -> None:
        """A checkpoint that failed stops the worker: its restart (or the worker that takes the partitions
        over) processes those records again from the last durable checkpoint."""
        last = self.last
        if last is not None and last.done() and not last.cancelled() and last.exception() is not None:
            raise RuntimeError("a checkpoint failed") from last.exception()

    def _hold(self, batch: Mapping[TP, Sequence[Any]]) -> None:
        consumer = self.consumer
        if not self.held:
            self.held_since = time.monotonic()
            tp, records = next(iter(batch.items()))
            self.stand_in = consumer._to_message(tp, records[-1])
            consumer._unacked_messages.add(self.stand_in)
        for tp, records in batch.items():
            first = self.held[tp][0] if tp in self.held else records[0].offset
            self.held[tp] = (first, records[-1].offset)
            self.held_events += len(records)
            consumer._read_offset[tp] = records[-1].offset

    def _checkpoint(self) -> asyncio.Future[None]:
        """Start a checkpoint of everything held; its records are acknowledged to faust once it is durable."""
        future = self.checkpoint()
        future.add_done_callback(partial(self._durable, self.held, self.stand_in))
        self.held, self.held_events, self.held_since, self.stand_in = {}, 0, None, None
        self.last = future
        return future

    def _durable(self, held: dict[TP, tuple[int, int]], stand_in: Any, future: asyncio.Future[None]) -> None:
        consumer = self.consumer
        if not future.cancelled() and future.exception() is None:
            with ack_lock:
                for tp, (first, last) in held.items():
                    _ack_range(consumer, tp, first, last)
        consumer._unacked_messages.discard(stand_in)
        notify(consumer._waiting_for_ack)

    @staticmethod
    async def _finish(step: Awaitable[Any]) -> None:
        """Run ``step`` to its end, shielded from a cancel, then let the cancel take effect.

        faust stops a worker (and restarts the fetch loop at a rebalance) by cancelling the fetch loop: the work
        in flight is finished first, so a clean stop leaves nothing half done.
        """
        task = asyncio.ensure_future(step)
        cancelled = False
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                cancelled = True
        task.result()  # the step's own error, if it failed
        if cancelled:
            raise asyncio.CancelledError


def _ack_range(consumer: Any, tp: TP, first: int, last: int) -> None:
    """Mark offsets ``first..last`` of ``tp`` acknowledged, as ``Consumer.ack`` does message by message (the
    range, gaps included, since a fetch's offsets are consecutive but for transaction markers)."""
    committed = consumer._committed_offset[tp]
    start = first if committed is None else max(first, committed)
    if start > last:
        return
    index = consumer._acked_index[tp]
    fresh = [offset for offset in range(start, last + 1) if offset not in index]
    index.update(fresh)
    consumer._acked[tp].extend(fresh)
    consumer._n_acked += len(fresh)


async def _deliver_each(consumer: Any, tp: TP, records: Sequence[Any]) -> None:
    """Records of another topic, one by one through faust's callback, as faust's own loop does."""
    for record in records:
        read = consumer._read_offset[tp]
        if read is not None and record.offset < read:
            continue
        message = consumer._to_message(tp, record)
        await consumer.wait_first(consumer.callback(message), consumer.suspend_flow.wait())
        consumer._read_offset[tp] = record.offset
