"""``streamscore learner``: the live learner, one plain aiokafka process (no faust, no consumer group).

It reads ``examples`` (one partition: one order), feeds every record to :class:`models.learner.Learner`, and
every N examples or T seconds publishes a signed snapshot of every model, then a signed checkpoint of the
learner itself, to the compacted ``model-snapshots`` topic, and its report to ``metrics``. ``GET /metrics``
(Prometheus text) and ``GET /metrics.json`` serve the same report.

Why plain aiokafka rather than a faust agent:

- **The offset is part of the learned state.** The learner must resume from exactly the position its
  models were learned up to. That position travels inside the signed checkpoint, in the same record as the
  models, seen keys and metrics, so the two can never disagree. With faust the position is a group commit
  written separately from whatever state we publish: a commit ahead of the checkpoint would skip examples
  for good after a crash. Here the process assigns ``examples`` partition 0 itself and seeks to the
  checkpoint's offset + 1; it never commits.
- **One member, so no group.** A group buys rebalancing between members; the learner is one process on a
  one-partition topic by design, so a group adds only risk: noida-db never evicts a SIGKILLed member, which
  would leave a restarted learner waiting for an assignment forever (``broker.md``).
- faust's at-least-once acking and its JSON value decoding (which crashes the agent on a bad record) are
  what we would have to work around; a ``getmany`` loop states exactly what happens to every record.

Delivery: snapshots are published with ``acks=all`` and awaited, the models first and the checkpoint last, so
a checkpoint never names a model version that was not published. A crash between the two leaves published
versions the checkpoint does not know; at start the learner reads the newest published version of each model
and numbers past it (:meth:`~models.learner.Learner.advance_versions`). Examples consumed after the last
checkpoint are read again after a crash and learned once: the learner skips keys it has already learned.
If the broker stays unreachable past the producer's timeout the process exits with an error; restarting it
is always safe.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web

from models.experiment import model_names
from models.learner import CHECKPOINT, BadExample, Learner, arm_models, learner_from_settings, tripwire_from_settings
from models.snapshots import SnapshotRejected, load_snapshot
from streams.core.counters import Counters
from streams.core.topics import MAX_SNAPSHOT_BYTES
from streams.core.vectortrainer import ItemVectorTrainer
from streams.kafka.admin import partitions_of
from streams.kafka.clients import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    KafkaConnectionError,
    MessageSizeTooLargeError,
    TopicPartition,
    start_or_unreachable,
)
from streams.learner.vectors import follow_events_for_vectors
from streams.ops.prometheus import CONTENT_TYPE, prometheus
from streams.settings import Settings

__all__ = ["LiveLearner", "SnapshotTooLarge", "read_snapshots", "restore_learner", "run_learner"]

log = logging.getLogger(__name__)

MAX_RECORDS = 500
"""Examples taken per ``getmany``: learning is CPU work on the event loop, so the HTTP views wait at most one
batch (about 50 ms at ~10k examples/s)."""

# The checkpoint holds up to ``learner_max_seen`` remembered keys, compressed: ~24 bytes a key for random
# request ids (24 MB for a million), hence MAX_SNAPSHOT_BYTES and the topic's max.message.bytes.

REPORT_KEY = b"learner"

READ_TIMEOUT = 60.0
"""Seconds allowed to read ``model-snapshots`` to its end at start."""


class SnapshotTooLarge(RuntimeError):
    """A snapshot or the checkpoint exceeds what the broker accepts on ``model-snapshots``."""


async def read_snapshots(settings: Settings, consumer: AIOKafkaConsumer) -> tuple[list[bytes], dict[str, int]]:
    """Read ``model-snapshots`` from the beginning to its current end.

    Returns the newest checkpoint blobs (newest last; a few, in case the newest does not verify) and the
    newest published, verified version of each model. The topic is compacted, but compaction may not have run:
    the last record of a key wins.
    """
    topic = settings.topic("model-snapshots")
    partitions = await partitions_of(consumer, topic) or {0}
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    end = await consumer.end_offsets(tps)
    checkpoints: deque[bytes] = deque(maxlen=3)
    newest: dict[str, bytes] = {}
    deadline = time.monotonic() + READ_TIMEOUT
    while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not read {topic} to its end offsets {end} in {READ_TIMEOUT} s")
        batch = await consumer.getmany(*tps, timeout_ms=500)
        for messages in batch.values():
            for m in messages:
                name = (m.key or b"").decode(errors="replace")
                if m.value is None:
                    continue  # a tombstone: nothing to load
                if name == CHECKPOINT:
                    checkpoints.append(m.value)
                else:
                    newest[name] = m.value
    published: dict[str, int] = {}
    key = settings.snapshot_key.encode()
    for name, blob in newest.items():
        try:
            published[name] = load_snapshot(blob, key=key).version
        except SnapshotRejected as exc:
            log.warning("ignoring the newest snapshot of %r on %s: %s", name, topic, exc)
    return list(checkpoints), published


def _next_offset(learner: Learner) -> int:
    return 0 if learner.offset is None else learner.offset + 1


def restore_learner(settings: Settings, checkpoints: list[bytes]) -> Learner:
    """The learner of the newest checkpoint that verifies (newest last in ``checkpoints``), with the current
    settings; a fresh one when there is none."""
    names, key = model_names(settings), settings.snapshot_key.encode()
    config: dict[str, Any] = dict(
        snapshot_every=settings.snapshot_every,
        snapshot_seconds=settings.snapshot_seconds,
        tripwire=tripwire_from_settings(settings),
        negative_rate=settings.negative_sample_rate,
    )
    for blob in reversed(checkpoints):
        try:
            learner = Learner.from_checkpoint(blob, key=key, names=names, **config)
            learner.arm_models = arm_models(settings)
        except (SnapshotRejected, ValueError) as exc:
            log.error("ignoring a learner checkpoint that does not verify: %s", exc)
            continue
        if learner.book.window != settings.metrics_window:
            log.warning("metrics window stays %d (from the checkpoint), not %d: windows cannot be resized",
                        learner.book.window, settings.metrics_window)
        log.info("resumed from the checkpoint: %d examples learned, next offset %s, versions %s",
                 learner.examples, _next_offset(learner), learner.versions)
        return learner
    return learner_from_settings(settings)


class LiveLearner:
    """The loop around one :class:`Learner`: consume, learn, publish, serve."""

    def __init__(self, settings: Settings, learner: Learner, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.learner = learner
        self.producer = producer
        self.counters = Counters()
        self.checkpointed_offset = learner.offset
        self.tripwire_alert: bool | None = None
        self.vector_trainer: ItemVectorTrainer | None = None
        """Trains and ships the item vectors from ``events`` (``streams/learner/vectors.py``); None: off."""

    def handle(self, offset: int, value: bytes | None) -> None:
        try:
            example = orjson.loads(value) if value is not None else None
            self.learner.learn_one(example, offset=offset)  # type: ignore[arg-type]  # checked by the learner
        except (orjson.JSONDecodeError, BadExample) as exc:
            reason = "not_json" if isinstance(exc, orjson.JSONDecodeError) else "bad_example"
            self.counters.inc(f"rejected.{reason}")
            self.learner.reject_one(offset)
            log.warning("skipping examples record at offset %d (%s): %s", offset, reason, exc)

    async def publish(self, now: float | None, *, checkpoint_only: bool = False) -> None:
        topic = self.settings.topic("model-snapshots")
        records = [(CHECKPOINT, self.learner.checkpoint())] if checkpoint_only else self.learner.snapshots(now)
        models, checkpoint = records[:-1], records[-1]
        # Models first, awaited, then the checkpoint: a checkpoint never names an unpublished version.
        try:
            await asyncio.gather(*[await self.producer.send(topic, key=name.encode(), value=blob)
                                   for name, blob in models])
            await (await self.producer.send(topic, key=checkpoint[0].encode(), value=checkpoint[1]))
        except MessageSizeTooLargeError:
            sizes = ", ".join(f"{name} {len(blob)} bytes" for name, blob in records)
            raise SnapshotTooLarge(
                f"the broker refused a record on {topic} ({sizes}); raise the topic's max.message.bytes "
                f"(up to {MAX_SNAPSHOT_BYTES} bytes; the checkpoint grows ~25 bytes per remembered key)"
            ) from None
        self.checkpointed_offset = self.learner.offset
        report = self.learner.report()
        await (await self.producer.send(self.settings.topic("metrics"), key=REPORT_KEY, value=orjson.dumps(report)))
        self.counters.inc("checkpoints_alone" if checkpoint_only else "snapshot_rounds")
        log.info("published %s: %d examples, offset %s, versions %s", "a checkpoint" if checkpoint_only
                 else "snapshots", self.learner.examples, self.learner.offset, self.learner.versions)
        self.watch_tripwire(report)

    def watch_tripwire(self, report: dict[str, Any]) -> None:
        tripwire = report["tripwire"]
        if tripwire["alert"] == self.tripwire_alert:
            return
        self.tripwire_alert = tripwire["alert"]
        if tripwire["alert"]:
            log.warning("tripwire ALERT: %s", tripwire["reason"])
        else:
            log.info("tripwire quiet: %s", tripwire["reason"])

    async def finish(self) -> None:
        """On a clean stop: publish what is not in the last checkpoint yet."""
        if self.learner.pending:
            await self.publish(None)
        elif self.learner.offset != self.checkpointed_offset:
            await self.publish(None, checkpoint_only=True)  # only skipped records: move the offset, not versions

    def web_app(self) -> web.Application:
        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=prometheus(self.learner.report()).encode(),
                                headers={"Content-Type": CONTENT_TYPE})

        async def metrics_json(request: web.Request) -> web.Response:
            report = self.learner.report()
            report["counters"] = self.counters.snapshot()
            if self.vector_trainer is not None:
                report["counters"].update(self.vector_trainer.counters.snapshot())
            return web.Response(body=orjson.dumps(report), content_type="application/json")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/metrics.json", metrics_json)
        return app


async def _run(settings: Settings) -> int:
    bootstrap = settings.bootstrap
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await start_or_unreachable(reader, bootstrap, errors=(KafkaConnectionError,))  # the CLI prints it on one line
    try:
        checkpoints, published = await read_snapshots(settings, reader)
    finally:
        await reader.stop()
    learner = restore_learner(settings, checkpoints)
    learner.advance_versions(published)

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=MAX_SNAPSHOT_BYTES)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")  # when the checkpoint's offset was deleted
    live = LiveLearner(settings, learner, producer)
    runner = web.AppRunner(live.web_app(), access_log=None)
    vectors_task: asyncio.Task[None] | None = None
    vectors_stop = asyncio.Event()
    await producer.start()
    try:
        await consumer.start()
        tp = TopicPartition(settings.topic("examples"), 0)
        consumer.assign([tp])
        if learner.offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, learner.offset + 1)
        if settings.item_vectors:
            live.vector_trainer = ItemVectorTrainer.from_settings(settings)
            vectors_task = asyncio.create_task(follow_events_for_vectors(
                settings, live.vector_trainer, producer, vectors_stop, live.counters))
        await runner.setup()
        await web.TCPSite(runner, settings.web_host, settings.learner_web_port).start()
        print(f"streamscore learner: broker {bootstrap}, examples {tp.topic!r} from offset "
              f"{_next_offset(learner)}, snapshots "
              f"{settings.topic('model-snapshots')!r}, metrics {settings.topic('metrics')!r}, models "
              f"{', '.join(learner.names)}, web http://{settings.web_host}:{settings.learner_web_port} "
              "(/metrics, /metrics.json)", flush=True)
        while not stop.is_set():
            batch = await consumer.getmany(tp, timeout_ms=200, max_records=MAX_RECORDS)
            for message in batch.get(tp, []):
                live.handle(message.offset, message.value)
                # Checked after every example, not every batch: count-based rounds then hold exactly
                # snapshot_every examples each, as in a replay, whatever the fetch sizes were.
                if learner.due_snapshot(now := time.monotonic()):
                    await live.publish(now)
            if learner.due_snapshot(now := time.monotonic()):  # the time rule, while no examples come
                await live.publish(now)
        if vectors_task is not None:
            vectors_stop.set()
            await vectors_task
        await live.finish()
        log.info("learner stopped: %d examples, %d duplicates, %d rejected", learner.examples,
                 learner.duplicates, learner.rejected)
        return 0
    finally:
        if vectors_task is not None and not vectors_task.done():
            vectors_task.cancel()
            await asyncio.gather(vectors_task, return_exceptions=True)
        await runner.cleanup()
        await consumer.stop()
        await producer.stop()


def run_learner(settings: Settings) -> int:
    """Run the live learner until SIGTERM or SIGINT; returns the exit code."""
    if not logging.getLogger().handlers:  # run directly rather than from the CLI, which configures logging
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        return asyncio.run(_run(settings))
    except SnapshotTooLarge as exc:
        log.error("%s", exc)
        return 1
