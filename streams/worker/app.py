"""The faust application: topics, the user-state and pending-request tables, the score agent, the snapshot feed.

The agent takes events in batches (``take_events``) so that faust's per-event cost is paid once per batch:
each user's state is read once and written once per batch. faust's RocksDB store and its changelog choose
the partition of a table write from the *current event*, and during a batch that is the last event taken,
whatever its partition; so the batch is processed partition by partition, with the current event set to
one of that partition's events (see :func:`partition_context`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import TP, EventT, TopicT

from features.featureset import LAST_TS
from features.state import decode_state
from streams.core.deadletter import Source
from streams.core.expiry import FAUST_KEY_PREFIX, ExpirySweeper, expired_users
from streams.core.labels import PENDING
from streams.core.processor import Processor, StateCache
from streams.core.topics import spec_for
from streams.ops.dashboard import register_dashboard
from streams.ops.prometheus import CONTENT_TYPE
from streams.ops.telemetry import WorkerTelemetry
from streams.ops.worker_metrics import worker_prometheus
from streams.settings import TOPIC_NAMES, Settings
from streams.worker.changelog import stage_writes
from streams.worker.membership import current_member_id, record_member
from streams.worker.metrics_feed import LearnerReports, register_metrics_feed
from streams.worker.snapshot_feed import register_snapshot_feed

log = logging.getLogger(__name__)

USER_STATE_TABLE = "user-state"
PENDING_TABLE = "pending"
CLOCK_KEY_PREFIX = b"\xffclock/"
"""Each partition's event clock is kept in the ``pending`` table under this prefix and the partition number: a
0xff byte never occurs in UTF-8, so no request id can be such a key."""


def clock_key(partition: int) -> bytes:
    return CLOCK_KEY_PREFIX + str(partition).encode()


def broker_time(message: Any) -> float | None:
    """A record's broker timestamp in seconds, or None when it has none (faust gives -1 ms as -0.001)."""
    timestamp = getattr(message, "timestamp", None)
    return float(timestamp) if isinstance(timestamp, int | float) and timestamp > 0 else None


@dataclass
class StreamApp:
    app: faust.App
    settings: Settings
    processor: Processor
    topics: dict[str, TopicT]
    user_state: Any  # faust.Table
    pending: Any  # faust.Table
    sweeper: ExpirySweeper
    telemetry: WorkerTelemetry
    reports: LearnerReports
    """The learner's reports, followed from the ``metrics`` topic."""
    indexed_partitions: set[int] = field(default_factory=set)
    """Partitions whose waiting requests are in the processor's deadline index."""


def kafka_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(","))


@contextlib.contextmanager
def partition_context(event: EventT) -> Iterator[None]:
    """Make ``event`` the current event, so table reads and writes go to its partition's store."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def create_app(settings: Settings, processor: Processor | None = None) -> StreamApp:
    app = faust.App(
        settings.app_id,
        broker=kafka_url(settings.bootstrap),
        store="rocksdb://",
        datadir=str(settings.state_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.session_timeout,
        consumer_auto_offset_reset="earliest",
        # A batch's outputs are sent together and awaited together: large produce requests, few round trips
        # (feature-log records are ~5 KB: faust's 16 KB default batch held three).
        producer_linger=0.005,
        producer_max_batch_size=1_000_000,
        producer_max_request_size=4_000_000,
        web_enabled=settings.web_enabled,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        # Table routes forward a request to the worker that owns the key at this address.
        canonical_url=f"http://{settings.web_host}:{settings.web_port}",
        web_in_thread=False,
    )
    processor = processor or Processor.default(settings)
    topics = {
        logical: app.topic(
            settings.topic(logical),
            key_serializer="raw",
            value_serializer="raw",
            partitions=spec_for(settings, logical).partitions,
        )
        for logical in TOPIC_NAMES
    }
    user_state = _bytes_table(app, settings, USER_STATE_TABLE, "Per-user feature state (orjson bytes).")
    pending = _bytes_table(app, settings, PENDING_TABLE,
                           "Scored requests waiting for their labels (vectors and scores served), by request id.")
    stream_app = StreamApp(app, settings, processor, topics, user_state, pending,
                           ExpirySweeper(settings.expiry_sweep_every),
                           WorkerTelemetry(processor.counters, processor.timings), LearnerReports())

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's stub wants a positional signal
    async def forget_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        for tp in revoked:
            if tp.topic == settings.topic("events"):
                stream_app.indexed_partitions.discard(tp.partition)
                stream_app.telemetry.lag.pop(tp.partition, None)
                processor.forget_partition(tp.partition)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode's stub wants a positional signal
    async def remember_membership(sender: Any, assigned: Any, **kwargs: Any) -> None:
        member_id = current_member_id(app)
        if member_id:
            record_member(settings.state_dir, settings.app_id, member_id)

    _register_score_agent(stream_app)
    register_snapshot_feed(stream_app)
    register_metrics_feed(stream_app, stream_app.reports)
    _register_views(stream_app)
    return stream_app


def _bytes_table(app: faust.App, settings: Settings, name: str, help: str) -> Any:
    """A changelog-backed RocksDB (rocksdict) table of bytes, partitioned like the events."""
    return app.Table(
        name,
        partitions=settings.partitions,
        # bytes types make faust use the raw codec for the store and the changelog (schema= does not).
        key_type=bytes,
        value_type=bytes,
        options={"driver": "rocksdict"},
        help=help,
    )


async def process_batch(sa: StreamApp, events: Sequence[EventT]) -> int:
    """Process one batch of events, partition by partition.

    Order matters for "nothing lost, nothing twice": outputs are acknowledged by the broker *before* the
    users' states are written, and the offsets are committed (when ``take_events`` acks the batch) after
    both. So after a crash, a state that holds an event implies its outputs went out, and the processor
    skips the redelivered event; a state that does not hold it gets it again, outputs and all.
    """
    deliveries = []
    send = partial(_send, sa)
    telemetry = sa.telemetry
    writes: list[tuple[EventT, StateCache]] = []
    scored_at: list[float] = []
    """Produce times (record timestamps) of the batch's scored requests, for the event-to-score latency."""
    by_partition = sorted(events, key=lambda e: e.message.partition)  # stable: keeps offset order
    for partition, group_iter in groupby(by_partition, key=lambda e: e.message.partition):
        group = list(group_iter)
        with partition_context(group[-1]):
            if partition not in sa.indexed_partitions:
                index_pending_requests(sa, partition)
            states = StateCache(sa.user_state.get, sa.pending.get)
            for event in group:
                message = event.message
                source = Source(message.topic, message.partition, message.offset, message.key or b"",
                                broker_time(message))
                for out in sa.processor.process_one(message.value or b"", source, states):
                    deliveries.append(await send(out.topic, out.key, out.value))
                    telemetry.observe_output(out.topic, out.key, out.value)
                    if out.topic == "scores":
                        scored_at.append(message.timestamp)
        writes.append((group[-1], states))
    with telemetry.timings.stage("deliver"):
        await asyncio.gather(*deliveries)
    delivered = time.time()
    for produced in scored_at:
        telemetry.event_to_score.observe(max(0.0, delivered - produced))
    started = time.perf_counter()
    # Waiting requests before the users that index them, each acknowledged before the next: a crash between
    # the two leaves the user's last events unapplied, and they are applied again, rewriting the same entries.
    for table, rows_of in ((sa.pending, lambda w: w.pending.dirty()), (sa.user_state, lambda w: w.dirty())):
        staged = []
        for partition_event, written in writes:
            with partition_context(partition_event):
                staged.append(await stage_writes(sa.app, table, partition_event.message.partition, rows_of(written)))
        for writes_of_partition in staged:
            await writes_of_partition.confirm()
    await _save_clocks(sa, [partition_event for partition_event, _ in writes])
    for partition_event, _ in writes:
        with partition_context(partition_event):
            partition = partition_event.message.partition
            newest = sa.processor.max_ts.get(partition)
            if newest is not None and sa.sweeper.due(partition, newest):
                try:
                    sweep_expired_users(sa, partition, newest)
                except Exception:  # maintenance: a failed sweep is retried at the next one, scoring goes on
                    log.exception("sweeping expired users of partition %s failed", partition)
                    sa.processor.counters.inc("sweep_errors")
    telemetry.timings.observe("state_write", time.perf_counter() - started)
    for partition_event, _ in writes:
        _record_lag(sa, partition_event)
    telemetry.sample_throughput()
    return len(events)


async def _save_clocks(sa: StreamApp, partition_events: list[EventT]) -> None:
    """Store each partition's event clock (its newest time, held events, last offset decided), after the states.

    Last, so that a saved clock means everything it decided is out and written: after a crash, an event up to
    the clock's last offset is skipped (its outputs and state went out before), and an event after it is decided
    again from the saved clock, which decides it the same way (``streams/core/eventclock.py``). Held events live in
    the clock, so committing their offsets loses none of them.
    """
    staged = []
    for partition_event in partition_events:
        with partition_context(partition_event):
            partition = partition_event.message.partition
            record = sa.processor.clock_record(partition)
            if record is not None:
                staged.append(await stage_writes(sa.app, sa.pending, partition, [(clock_key(partition), record)]))
    for writes_of_partition in staged:
        await writes_of_partition.confirm()


def _record_lag(sa: StreamApp, last: EventT) -> None:
    """Messages behind the partition's end after ``last``, from the highwater the consumer's last fetch saw."""
    message = last.message
    try:
        highwater = sa.app.consumer.highwater(TP(message.topic, message.partition))
    except Exception:  # no fetch yet, or the partition was just revoked: no figure rather than a wrong one
        return
    if highwater is not None:
        sa.telemetry.lag[message.partition] = max(0, highwater - message.offset - 1)


async def _send(sa: StreamApp, logical_topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
    """Hand one record to faust's producer; the returned future resolves once the broker has it.

    Straight to the producer rather than ``Topic.send``: measured on 30k events, ``Topic.send`` cost ~1.2 ms
    per record (18 s in all) against ~0.06 ms here, for the same producer, batching and flush on commit.
    """
    return await sa.app.producer.send(sa.settings.topic(logical_topic), key, value, None, None, None)


def partition_states(sa: StreamApp, partition: int) -> Iterator[tuple[bytes, bytes]]:
    """(user_id, state bytes) of every user stored for ``partition`` on this worker."""
    db = sa.user_state.data._db_for_partition(partition)  # faust has no public per-partition iterator
    return ((key, blob) for key, blob in db.items() if not key.startswith(FAUST_KEY_PREFIX))


def index_pending_requests(sa: StreamApp, partition: int) -> None:
    """Put the partition's waiting requests in the processor's deadline index and take back its event clock
    (once per assignment; call within the partition's event context)."""
    sa.processor.restore_clock(partition, sa.pending.get(clock_key(partition)))
    count = 0
    for key, blob in partition_states(sa, partition):
        state = decode_state(blob)
        if PENDING in state:
            sa.processor.index_pending(partition, key.decode(), state)
            count += len(state[PENDING])  # the user's index of its waiting requests
    sa.indexed_partitions.add(partition)
    log.info("partition %s: %s requests waiting for labels", partition, count)


def sweep_expired_users(sa: StreamApp, partition: int, newest: float) -> int:
    """Delete the partition's expired users (call within the partition's context); return how many."""
    horizon = newest - sa.settings.allowed_lateness
    expired = expired_users(partition_states(sa, partition), sa.processor.features, horizon)
    for key in expired:
        del sa.user_state[key]
    sa.processor.counters.inc("users_swept", len(expired))
    return len(expired)


def _register_score_agent(sa: StreamApp) -> None:
    settings = sa.settings

    @sa.app.agent(sa.topics["events"], name="score")
    async def score(stream: faust.StreamT) -> None:
        batches = stream.take_events(settings.batch_size, within=settings.batch_within)  # type: ignore[attr-defined]
        async for events in batches:
            await process_batch(sa, events)


def dashboard_snapshot(sa: StreamApp) -> dict[str, Any]:
    """What the dashboard and ``streamscore top`` draw: the worker's telemetry and the learner's reports."""
    settings = sa.settings
    return {
        **sa.telemetry.snapshot(),
        "worker": {"app_id": settings.app_id, "bootstrap": settings.bootstrap,
                   "partitions": sorted(tp.partition for tp in sa.app.assignor.assigned_actives()
                                        if tp.topic == settings.topic("events")),
                   "web": f"http://{settings.web_host}:{settings.web_port}",
                   "learner_web": f"http://{settings.web_host}:{settings.learner_web_port}"},
        "models": dict(sa.processor.scorer.versions),
        "learner": sa.reports.snapshot(),
    }


def _register_views(sa: StreamApp) -> None:
    register_dashboard(sa)  # /dashboard and its static files; the page reads /dashboard/data.json below
    @sa.app.page("/counters/")
    async def counters(web: Any, request: Any) -> Any:
        return web.json(sa.processor.counters.snapshot())

    @sa.app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        learner = sa.reports.latest
        text = worker_prometheus(sa.telemetry, sa.processor.scorer.versions, learner)
        return web.bytes(text.encode(), headers={"Content-Type": CONTENT_TYPE})

    @sa.app.page("/dashboard/data.json")
    async def dashboard_data(web: Any, request: Any) -> Any:
        return web.json(dashboard_snapshot(sa))

    @sa.app.page("/users/{user_id}/")
    class UserFeatures(faust.web.View):
        """A user's current features, answered by the worker that owns the user (others forward it).

        ``?ts=`` evaluates them at another event time (default: the user's last event); ``?items=a,b`` adds
        the user-by-item features for those items.
        """

        @sa.app.table_route(table=sa.user_state, match_info="user_id")  # type: ignore[arg-type]
        async def get(self, request: Any, user_id: str) -> Any:
            state = decode_state(sa.user_state.get(user_id))
            if not state:
                return self.json({"user_id": user_id, "error": "unknown user (no events yet, or expired)"},
                                 status=404)
            try:
                ts = float(request.query.get("ts", state[LAST_TS]))
            except ValueError:
                return self.json({"error": "ts must be a number (seconds since the epoch)"}, status=400)
            items = [i for i in request.query.get("items", "").split(",") if i]
            described = sa.processor.features.describe(state, ts, items)
            return self.json({"user_id": user_id, **described, "last_event_ts": state[LAST_TS]})
