"""Test fixtures as factories: a real broker, settings isolated per test, worker processes, topic I/O.

The broker is started once per test session: Apache Kafka from the jars ``make kafka`` fetched by default,
noida-db or Tansu with ``STREAMSCORE_TEST_BROKER=noida|tansu``, or none when ``STREAMSCORE_TEST_BOOTSTRAP``
names a running Kafka (an existing cluster, or the docker-compose one).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.kafka.admin import create_topics, partitions_of
from streams.kafka.broker import DEFAULT_KIND, LocalBroker, free_port, local_broker
from streams.replay import ReplayDriver
from streams.settings import Settings, load_settings, to_env

REPO = Path(__file__).resolve().parents[1]


@dataclass
class BrokerUnderTest:
    bootstrap: str
    kind: str
    """``kafka``, ``noida``, ``tansu`` or ``external``: tests that hit a documented defect of one kind xfail on it."""
    local: LocalBroker | None = None


def external_bootstrap() -> str | None:
    return os.environ.get("STREAMSCORE_TEST_BOOTSTRAP") or None


def broker_kind_under_test() -> str:
    """The kind of local broker this run starts: ``STREAMSCORE_TEST_BROKER``, else Apache Kafka."""
    return os.environ.get("STREAMSCORE_TEST_BROKER") or DEFAULT_KIND


def start_test_broker(base_dir: Path, kind: str | None = None) -> BrokerUnderTest:
    """The external broker if one is configured, else a local one of ``kind`` (default: the env's)."""
    external = external_bootstrap()
    if external:
        return BrokerUnderTest(external, "external")
    kind = kind or broker_kind_under_test()
    broker = local_broker(kind, base_dir / kind, free_port())
    broker.start()
    return BrokerUnderTest(broker.bootstrap, kind, broker)


def make_settings(broker: BrokerUnderTest, data_dir: Path, **overrides: Any) -> Settings:
    """Settings of their own for one test: topics, consumer group and state are not shared."""
    run = uuid.uuid4().hex[:8]
    values: dict[str, Any] = dict(
        bootstrap=broker.bootstrap,
        app_id=f"streamscore-test-{run}",
        topic_prefix=f"t{run}.",
        data_dir=data_dir,
        partitions=2,
        web_port=free_port(),
        log_level="info",
        # The scenarios compare a live run on several partitions with a replay, exactly: that holds for per-user
        # features (DESIGN.md), not for the cross-user item side, whose live values depend on how partitions
        # interleave. tests/integration/test_item_side.py turns it on and checks it.
        item_features=False,
        # The scenarios count the label join's examples, one per candidate when its window closes. fnw, which the
        # default (auto) chooses for clicks, adds early records with keys of their own on the same topic:
        # tests/integration/test_fnw_live.py runs it live, beside the replay.
        learn_from="wait",
    )
    values.update(overrides)
    # Validated as a worker process will validate them, so a bad combination fails here, not in a subprocess.
    return load_settings(to_env(Settings(**values)))


def create_test_topics(settings: Settings) -> None:
    """Create the topics; callable from sync and async tests alike (it runs its own loop on a thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, create_topics(settings)).result()


class WorkerProcess:
    """A real ``streamscore worker`` process, its output in a log file for post-mortems."""

    def __init__(self, settings: Settings, log_path: Path, command: str = "worker") -> None:
        self.settings = settings
        self.log_path = log_path
        env = {**os.environ, **to_env(settings), "PYTHONUNBUFFERED": "1"}
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", command], cwd=REPO, env=env,
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM: faust leaves the group cleanly and flushes its state."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no goodbye to the group, no flush."""
        self.proc.kill()
        self.proc.wait()
        self._log.close()


def events_payload(events: Iterable[dict[str, Any] | bytes]) -> list[tuple[bytes | None, bytes]]:
    """(key, value) pairs for events: keyed by user_id, as producers must."""
    out: list[tuple[bytes | None, bytes]] = []
    for event in events:
        if isinstance(event, bytes):
            out.append((None, event))
        else:
            out.append((str(event.get("user_id", "")).encode(), orjson.dumps(event)))
    return out


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    partition: int
    offset: int

    def json(self) -> Any:
        return orjson.loads(self.value)


async def consume(bootstrap: str, topic: str, *, expect: int = 0, timeout: float = 60.0,
                  idle: float = 0.0, worker: WorkerProcess | None = None,
                  until: Callable[[list[Record]], bool] | None = None) -> list[Record]:
    """Read ``topic`` from the beginning until ``expect`` records have arrived or ``timeout`` passes.

    With ``idle`` > 0, keep reading until no new record came for that long (to see that nothing extra
    arrives). No consumer group: reading changes nothing on the broker. With ``worker``, stop waiting as
    soon as that process has died, and say why. With ``until``, read until it holds for what was read.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topic)
        assert partitions, f"topic {topic} does not exist at {bootstrap}: reading it would prove nothing"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            if worker is not None and not worker.alive:
                raise AssertionError(f"worker died (exit {worker.proc.returncode}):\n{worker.log_tail()}")
            enough = len(records) >= expect and (until is None or until(records))
            if enough and (idle <= 0 or time.monotonic() - last_new >= idle):
                break
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for m in messages:
                    records.append(Record(m.key, m.value or b"", m.partition, m.offset))
                    last_new = time.monotonic()
        return records
    finally:
        await consumer.stop()


def request_ids(records: list[Record]) -> set[str]:
    return {r.json()["request_id"] for r in records}


def covers(expected: set[str]) -> Callable[[list[Record]], bool]:
    """An ``until`` for :func:`consume`: every expected request id has arrived.

    It reads each record once (records only grow during a ``consume``), so waiting stays linear.
    """
    missing = set(expected)
    seen = 0

    def until(records: list[Record]) -> bool:
        nonlocal seen
        for record in records[seen:]:
            missing.discard(record.json()["request_id"])
        seen = len(records)
        return not missing

    return until


def unique_by_request(records: list[Record], fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """request_id -> decoded value (the first copy); asserts that redelivered copies of a record are identical,
    or, with ``fields``, agree on those (a copy rescored after a crash may carry a newer model's score)."""
    out: dict[str, Any] = {}
    for record in records:
        value = record.json()
        first = out.setdefault(value["request_id"], value)
        if fields is not None:
            first, value = {k: first.get(k) for k in fields}, {k: value.get(k) for k in fields}
        assert first == value, f"two different records for request {value['request_id']}: {first} != {value}"
    return out


def unique_examples(records: list[Record]) -> dict[tuple[str, str], Any]:
    """(request_id, item_id) -> example; asserts that redelivered copies of an example are identical."""
    out: dict[tuple[str, str], Any] = {}
    for record in records:
        value = record.json()
        first = out.setdefault((value["request_id"], value["item_id"]), value)
        assert first == value, f"two different examples for {value['request_id']}/{value['item_id']}"
    return out


def early_candidates(examples: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The early records among decoded ``examples`` records (``learn_from=fnw``), one dict per candidate: a
    request's fake negatives record gives one per item (its fields with the item's ``item_id`` and ``x``), a
    positive is itself. Window-closed examples (no ``kind``) are left out."""
    out: list[dict[str, Any]] = []
    for record in examples:
        if "kind" not in record:
            continue
        if "items" not in record:
            out.append(record)
            continue
        common = {k: v for k, v in record.items() if k != "items"}
        out.extend({**common, "item_id": item["item_id"], "x": item["x"]} for item in record["items"])
    return out


def request_ids_of(events: Iterable[dict[str, Any]]) -> set[str]:
    """The request ids of a stream of events."""
    return {str(e["request_id"]) for e in events if e["type"] == "request"}


def finished_replay(settings: Settings, events: Iterable[dict[str, Any]]) -> ReplayDriver:
    """The replay driver after ``events`` and the end of input (every waiting request closed)."""
    driver = ReplayDriver(settings)
    driver.pipe_all(list(events))
    driver.finish()
    return driver


def worker_counters(settings: Settings) -> dict[str, Any]:
    """A worker's ``GET /counters/``, or ``{"unreachable": why}`` (for polling and failure messages)."""
    try:
        with urllib.request.urlopen(f"http://{settings.web_host}:{settings.web_port}/counters/", timeout=5) as r:
            found: dict[str, Any] = orjson.loads(r.read())
            return found
    except OSError as exc:
        return {"unreachable": str(exc)}


def assert_examples_match_replay(live: dict[tuple[str, str], Any], replayed: dict[tuple[str, str], Any],
                                 fields: tuple[str, ...] | None = None) -> None:
    """Live examples are the replay's: each one identical (or equal in ``fields``: with a learner running, the
    scores served differ by design), and every request that closed live complete.

    Live closes fewer requests: a partition's watermark trails the replay's, whose input ends closed.
    """
    def view(example: Any) -> Any:
        return example if fields is None or example is None else {k: example.get(k) for k in fields}

    assert live, "no examples came out"
    different = [k for k in live if view(live[k]) != view(replayed.get(k))]
    assert not different, f"{len(different)} live examples differ from the replay, e.g. {different[:3]}"
    closed = {request_id for request_id, _ in live}
    incomplete = sorted({r for r, i in replayed if r in closed and (r, i) not in live})
    assert not incomplete, f"requests closed live without all their candidates: {incomplete[:5]}"
