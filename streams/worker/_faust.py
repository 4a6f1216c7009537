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
from typing import Any

import rocksdict
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

__all__ = [
    "FAUST_KEY_PREFIX",
    "FetchHandler",
    "Flush",
    "app_tasks",
    "changelog_topic_name",
    "deliver_fetches",
    "member_id",
    "partition_db",
    "partition_rows",
    "write_partition",
]

log = logging.getLogger(__name__)

FetchHandler = Callable[[Mapping[TP, Sequence[Any]]], Awaitable[bool]]
"""Takes one fetch of the events topic, as aiokafka ``ConsumerRecord`` lists by partition; returns True when
everything it was given so far is out and written (a checkpoint ran): their offsets may be committed then."""
Flush = Callable[[], Awaitable[None]]
"""Makes everything the handler was given durable (a checkpoint)."""

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


def deliver_fetches(app: Any, topic: str, handler: FetchHandler, flush: Flush, flush_within: float) -> None:
    """Make ``app``'s consumer hand every fetch of ``topic`` to ``handler`` whole, instead of turning each
    record into a faust ``Event`` for a ``Stream`` (about 100 µs of faust machinery per event, measured in
    ``bench/``). Records of other topics (table changelogs of standbys, faust's own) go the usual way.

    ``handler`` returns whether everything it was given so far is durable (a checkpoint ran); until then the
    fetches' offsets are held back from faust's commits. ``flush`` makes everything durable; the loop calls it
    when what it holds back is ``flush_within`` seconds old and no fetch brought a checkpoint, when the flow
    stops (a rebalance) and when the worker stops, so a checkpoint is never more than that late.

    Call before the consumer is created (``app.consumer`` is made on first use). The topic must still be
    subscribed through faust (an agent on it), so the assignor co-partitions the tables with it.
    """
    base = type(app.transport).Consumer

    class FetchConsumer(base):  # type: ignore[misc, valid-type]  # a class chosen at run time
        async def _drain_messages(self, fetcher: Any) -> None:
            await _FetchLoop(self, topic, handler, flush, flush_within).run(fetcher)

    app.transport.Consumer = FetchConsumer


class _FetchLoop:
    """faust's fetch loop (``Consumer._drain_messages``), except that a fetch of one topic goes to a handler.

    The rest is kept: wait for flow (a rebalance stops it), fetch the active partitions only, drop a fetch made
    before a rebalance (the consumer seeks back to the committed offsets), commit every ``broker_commit_every``
    acks. Unlike faust's loop, no record of the topic is dropped for being older than the newest read: the
    processor knows a redelivery by its offset (``streams/core/eventclock.py``). While fetches wait for their
    checkpoint, a stand-in message of theirs is "unacked", so a rebalance waits (``Consumer.wait_empty``) until
    they are durable before it commits and hands the partitions over.
    """

    def __init__(self, consumer: Any, topic: str, handler: FetchHandler, flush: Flush, flush_within: float) -> None:
        self.consumer = consumer
        self.topic = topic
        self.handler = handler
        self.flush = flush
        self.flush_within = flush_within
        self.held: dict[TP, tuple[int, int]] = {}
        """Per partition, the first and last offset processed but not yet durable."""
        self.held_since: float | None = None
        self.in_flight: Any = None

    async def run(self, fetcher: Any) -> None:
        consumer = self.consumer
        consumer_stopped, fetcher_stopped = consumer._stopped.is_set, fetcher._stopped.is_set
        commit_every = consumer._commit_every
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                if self.held and (not consumer.flow_active or self._held_for() >= self.flush_within):
                    await self._finish(self.flush())
                timeout = 1.0 if not self.held else max(0.0, self.flush_within - self._held_for())
                records, active = await consumer._wait_next_records(timeout)
                if not records or consumer.should_stop:
                    await consumer.sleep(0)
                    continue
                if not consumer.flow_active:
                    await consumer.perform_seek()
                    continue
                usable = {tp: recs for tp, recs in records.items()
                          if recs and (active is None or tp in active or tp in consumer._buffered_partitions)}
                ours = {tp: recs for tp, recs in usable.items() if tp.topic == self.topic}
                if ours:
                    self._hold(ours)
                    await self._finish(self.handler(ours))
                for tp, recs in usable.items():
                    if tp.topic != self.topic:
                        await _deliver_each(consumer, tp, recs)
                if commit_every is not None and consumer._n_acked >= commit_every:
                    consumer._n_acked = 0
                    await consumer.commit()
        except asyncio.CancelledError:
            if self.held:  # a stop or a rebalance: what was processed is made durable before the loop ends
                await self._finish(self.flush())
            raise
        except consumer.consumer_stopped_errors:
            if not consumer.transport.app.should_stop:
                raise
        except Exception:
            log.exception("the fetch loop failed")
            raise

    def _held_for(self) -> float:
        return 0.0 if self.held_since is None else time.monotonic() - self.held_since

    def _hold(self, fetch: Mapping[TP, Sequence[Any]]) -> None:
        consumer = self.consumer
        if not self.held:
            self.held_since = time.monotonic()
            tp, records = next(iter(fetch.items()))
            self.in_flight = consumer._to_message(tp, records[-1])
            consumer._unacked_messages.add(self.in_flight)
        for tp, records in fetch.items():
            first = self.held[tp][0] if tp in self.held else records[0].offset
            self.held[tp] = (first, records[-1].offset)
            consumer._read_offset[tp] = records[-1].offset

    async def _finish(self, step: Awaitable[bool | None]) -> None:
        """Run ``step`` (the handler or the flush) to its end, shielded from a cancel, and acknowledge the held
        offsets to faust if it made them durable.

        faust stops a worker (and restarts the fetch loop at a rebalance) by cancelling the fetch loop. The work
        in flight is finished first, so a clean stop leaves nothing half done; the cancel takes effect after.
        """
        task = asyncio.ensure_future(step)
        cancelled = False
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                cancelled = True
        durable = task.result() is not False  # the step's own error, if it failed
        if durable and self.held:
            consumer = self.consumer
            with ack_lock:
                for tp, (first, last) in self.held.items():
                    _ack_range(consumer, tp, first, last)
            consumer._unacked_messages.discard(self.in_flight)
            notify(consumer._waiting_for_ack)
            self.held, self.held_since, self.in_flight = {}, None, None
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
