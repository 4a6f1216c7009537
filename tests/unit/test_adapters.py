"""Every faust and aiokafka internal the adapters rely on still exists on the real classes, so a version bump
that moves one fails here, loudly, rather than in a running worker. The adapters are
``streams/worker/_faust.py`` (faust, and aiokafka through faust) and ``streams/kafka/_aiokafka.py``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from aiokafka import AIOKafkaConsumer
from faust.app.base import App
from faust.stores.rocksdb import Store
from faust.transport.consumer import Consumer as TransportConsumer
from faust.transport.drivers.aiokafka import Consumer as AiokafkaConsumer
from faust.transport.drivers.aiokafka import Transport

from streams.settings import Settings
from streams.worker import _faust
from streams.worker.app import create_app


def test_the_rocksdb_store_has_its_per_partition_database_and_persisted_offset_key() -> None:
    assert callable(Store._db_for_partition)
    assert Store.offset_key == b"__faust\0offset__"  # written in the same write batch as the rows


def test_the_consumer_has_the_fetch_loop_and_ack_bookkeeping_deliver_fetches_replaces_and_feeds() -> None:
    consumer = AiokafkaConsumer
    for name in ("_drain_messages", "_wait_next_records", "_to_message", "perform_seek", "commit", "wait_first"):
        assert callable(getattr(consumer, name)), name
    assert Transport.Consumer is AiokafkaConsumer
    annotations = {**TransportConsumer.__annotations__}
    for name in ("_acked", "_acked_index", "_n_acked", "_read_offset", "_committed_offset", "_unacked_messages",
                 "_buffered_partitions", "_waiting_for_ack", "_commit_every"):
        assert name in annotations, name


async def test_a_real_app_has_its_tasks_consumer_thread_and_table_internals(tmp_path: Path) -> None:
    sa = create_app(Settings(bootstrap="127.0.0.1:1", data_dir=tmp_path, web_enabled=False))
    assert isinstance(App.__dict__.get("_app_tasks", sa.app._app_tasks), list)
    assert _faust.app_tasks(sa.app)  # the score agent's app and the followers registered tasks
    thread = sa.app.consumer._thread  # type: ignore[attr-defined]  # the aiokafka driver's Consumer has it
    assert callable(thread._ensure_consumer)  # gives the started AIOKafkaConsumer: its _coordinator is below
    assert callable(sa.user_state.changelog_topic.get_topic_name)
    assert hasattr(sa.user_state, "data")


async def test_a_real_aiokafka_consumer_has_the_client_whose_topic_list_partitions_of_extends() -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    try:
        assert callable(consumer._client.add_topic)
        assert hasattr(consumer, "_coordinator")  # _faust.member_id reads _coordinator.member_id
    finally:
        await consumer.stop()


def test_partition_rows_leaves_out_faust_bookkeeping() -> None:
    assert _faust.FAUST_KEY_PREFIX == b"__faust"
    rows = {b"__faust\x00offset__": b"42", b"__faust_other": b"x", b"u1": b"{}", b"u2": b"{}"}
    table = SimpleNamespace(data=SimpleNamespace(_db_for_partition=lambda partition: rows))
    assert dict(_faust.partition_rows(table, 0)) == {b"u1": b"{}", b"u2": b"{}"}

