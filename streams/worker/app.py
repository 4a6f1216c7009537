"""The faust application: topics, the user-state and pending-request tables, and what runs on them.

``create_app`` wires the parts: the score agent and its batch loop (``batch.py``), the followers of the model
snapshots and the learner's reports (``feeds.py``) and the HTTP views (``views.py``). faust's internals are
reached only through ``_faust.py``.
"""

from __future__ import annotations

from typing import Any

import faust

from streams.core.expiry import ExpirySweeper
from streams.core.processor import Processor
from streams.core.topics import spec_for
from streams.kafka.partitioner import RememberingPartitioner
from streams.ops.reports import LearnerReports
from streams.ops.telemetry import WorkerTelemetry
from streams.settings import TOPIC_NAMES, Settings
from streams.worker import _faust
from streams.worker.batch import register_score_agent
from streams.worker.context import StreamApp
from streams.worker.feeds import register_metrics_feed, register_snapshot_feed
from streams.worker.items import register_item_feed
from streams.worker.membership import record_member
from streams.worker.stallwatch import register_stall_watch
from streams.worker.views import register_views

__all__ = ["PENDING_TABLE", "USER_STATE_TABLE", "StreamApp", "create_app", "kafka_url"]

USER_STATE_TABLE = "user-state"
PENDING_TABLE = "pending"


def kafka_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(","))


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
        # No linger: a score goes out as soon as it is made, and a checkpoint's awaited round trips (outputs,
        # then each table's changelog) each cost a broker round trip, not 5 ms more (p50 at 200 events/s: 65 ms
        # with 5 ms of linger, 12 ms without). Records sent while a request is in flight still batch up, so
        # under load requests stay large (feature-log records are ~5 KB: faust's 16 KB default batch held three).
        producer_linger=0.0,
        producer_max_batch_size=1_000_000,
        producer_max_request_size=4_000_000,
        # Kafka's default partitions, each key hashed once (aiokafka's pure-Python hash was ~9 µs a record).
        producer_partitioner=RememberingPartitioner(),
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
                           WorkerTelemetry(processor.counters, processor.timings), LearnerReports(),
                           topic_names={logical: settings.topic(logical) for logical in TOPIC_NAMES})

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's stub wants a positional signal
    async def forget_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        for tp in revoked:
            if tp.topic == settings.topic("events"):
                stream_app.indexed_partitions.discard(tp.partition)
                stream_app.states.pop(tp.partition, None)
                stream_app.first_offsets.pop(tp.partition, None)
                stream_app.telemetry.lag.pop(tp.partition, None)
                processor.forget_partition(tp.partition)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode's stub wants a positional signal
    async def remember_membership(sender: Any, assigned: Any, **kwargs: Any) -> None:
        member_id = _faust.member_id(app)
        if member_id:
            record_member(settings.state_dir, settings.app_id, member_id)

    register_score_agent(stream_app)
    register_snapshot_feed(app, settings, processor.scorer, processor.counters, processor.item_vectors)
    register_metrics_feed(app, settings, stream_app.reports, processor.counters)
    register_item_feed(app, settings, processor)
    register_views(stream_app)
    register_stall_watch(stream_app)
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


