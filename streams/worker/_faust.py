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
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import rocksdict
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

__all__ = [
    "FAUST_KEY_PREFIX",
    "FetchHandler",
    "app_tasks",
    "changelog_topic_name",
    "deliver_fetches",
    "member_id",
    "partition_db",
    "partition_rows",
    "write_partition",
]

log = logging.getLogger(__name__)

FetchHandler = Callable[[Mapping[TP, Sequence[Any]]], Awaitable[None]]
"""Takes one fetch of the events topic, as aiokafka ``ConsumerRecord`` lists by partition, and returns once
everything it decided is out and written: its offsets may be committed then."""

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


def deliver_fetches(app: Any, topic: str, handler: FetchHandler) -> None:
    """Make ``app``'s consumer hand every fetch of ``topic`` to ``handler`` whole, instead of turning each
    record into a faust ``Event`` for a ``Stream`` (about 100 µs of faust machinery per event, measured in
    ``bench/``). Records of other topics (table changelogs of standbys, faust's own) go the usual way.

    Call before the consumer is created (``app.consumer`` is made on first use). The topic must still be
    subscribed through faust (an agent on it), so the assignor co-partitions the tables with it.
    """
    base = type(app.transport).Consumer

    class FetchConsumer(base):  # type: ignore[misc, valid-type]  # a class chosen at run time
        async def _drain_messages(self, fetcher: Any) -> None:
            await _drain(self, fetcher, topic, handler)

    app.transport.Consumer = FetchConsumer


async def _drain(consumer: Any, fetcher: Any, topic: str, handler: FetchHandler) -> None:
    """faust's fetch loop (``Consumer._drain_messages``), except that a fetch of ``topic`` goes to ``handler``.

    The rest is kept: wait for flow (a rebalance stops it), fetch the active partitions only, drop a fetch made
    before a rebalance (the generation changed: the consumer seeks back to the committed offsets), commit every
    ``broker_commit_every`` acks. Unlike faust's loop, no record of ``topic`` is dropped for being older than
    the newest read: the processor knows a redelivery by its offset (``streams/core/eventclock.py``).
    While the handler runs, a stand-in message of the fetch is "unacked", so a rebalance waits for the handler
    (``Consumer.wait_empty``) before it commits and hands the partitions over.
    """
    consumer_stopped, fetcher_stopped = consumer._stopped.is_set, fetcher._stopped.is_set
    commit_every = consumer._commit_every
    try:
        while not (consumer_stopped() or fetcher_stopped()):
            records, active = await consumer._wait_next_records(1.0)
            generation = consumer.app.consumer_generation_id
            if not records or consumer.should_stop:
                await consumer.sleep(0)
                continue
            if not consumer.flow_active or generation != consumer.app.consumer_generation_id:
                await consumer.perform_seek()
                continue
            usable = {tp: recs for tp, recs in records.items()
                      if recs and (active is None or tp in active or tp in consumer._buffered_partitions)}
            ours = {tp: recs for tp, recs in usable.items() if tp.topic == topic}
            if ours:
                await _handle(consumer, ours, handler)
            for tp, recs in usable.items():
                if tp.topic != topic:
                    await _deliver_each(consumer, tp, recs)
            if commit_every is not None and consumer._n_acked >= commit_every:
                consumer._n_acked = 0
                await consumer.commit()
    except consumer.consumer_stopped_errors:
        if not consumer.transport.app.should_stop:
            raise
    except Exception:
        log.exception("the fetch loop failed")
        raise


async def _handle(consumer: Any, fetch: Mapping[TP, Sequence[Any]], handler: FetchHandler) -> None:
    """Run ``handler`` on a fetch to its end, then acknowledge the fetch's offsets to faust.

    faust stops a worker (and restarts the fetch loop at a rebalance) by cancelling the fetch loop. The batch
    in flight is finished first, shielded from that cancel, so a clean stop leaves nothing half done and
    nothing to process again; the cancel takes effect once it is written and acknowledged.
    """
    tp, last = next((tp, recs[-1]) for tp, recs in fetch.items())
    in_flight = consumer._to_message(tp, last)
    consumer._unacked_messages.add(in_flight)
    cancelled = False
    try:
        task = asyncio.ensure_future(handler(fetch))
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                cancelled = True
        task.result()  # the handler's own error, if it failed
        with ack_lock:
            for tp, recs in fetch.items():
                _ack_range(consumer, tp, recs[0].offset, recs[-1].offset)
                consumer._read_offset[tp] = recs[-1].offset
    finally:
        consumer._unacked_messages.discard(in_flight)
        notify(consumer._waiting_for_ack)
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
