"""The live learner as a process against the real broker: snapshots, reports, HTTP views, and a SIGKILL restart
that learns every distinct example exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from models.learner import CHECKPOINT, Learner
from models.snapshots import Snapshot, load_snapshot
from models.tripwire import Tripwire
from streams.core.deadletter import Source
from streams.core.vectortrainer import ITEM_VECTORS, ItemVectorTrainer
from streams.kafka.broker import free_port
from streams.learner.process import LiveLearner, SnapshotTooLarge, read_snapshots, restore_learner
from streams.settings import Settings, to_env
from streams.tools.simulate import simulate
from tests.fixtures import REPO, Record, consume, produce
from tests.unit.test_prometheus import get, parse

pytestmark = pytest.mark.integration

RUN = ("from streams.learner.process import run_learner; from streams.settings import load_settings; "
       "raise SystemExit(run_learner(load_settings()))")


class LearnerProcess:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("STREAMSCORE_")},
               **to_env(settings), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", RUN], cwd=REPO, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._log.close()


def examples(requests: range) -> list[dict[str, Any]]:
    """Two items per request; prod served, the baseline shadowed."""
    out = []
    for r in requests:
        for item, position in (("a", 0.0), ("b", 1.0)):
            y = int((r + int(position)) % 3 == 0)
            out.append({"request_id": f"r{r}", "item_id": item, "user_id": f"u{r % 4}", "ts": 100.0 + r,
                        "label_ts": 110.0 + r, "x": {"cand_position": position, "f": r / 10.0}, "y": y,
                        "scores_at_serve": {"prod": 0.3 + 0.05 * (r % 5), "baseline": 0.1}, "arm": "A",
                        "served_model": "prod", "model_versions": {"prod": 0, "baseline": 0}, "schema": "fs-t"})
    return out


def records(values: list[dict[str, Any] | bytes]) -> list[tuple[bytes | None, bytes]]:
    return [(v["request_id"].encode(), orjson.dumps(v)) if isinstance(v, dict) else (None, v) for v in values]


def payload(blob: bytes) -> bytes:
    """The pickled model inside a snapshot, as the learner process wrote it (frame: magic, format, lengths)."""
    _, _, header_len, payload_len = struct.unpack_from(">5sBIQ", blob)
    start = struct.calcsize(">5sBIQ") + header_len
    return blob[start:start + payload_len]


def snapshots(found: list[Record], key: bytes) -> list[Snapshot]:
    return [load_snapshot(r.value, key=key) for r in found]


def checkpoint_with(key: bytes, n: int) -> Callable[[list[Record]], bool]:
    def until(found: list[Record]) -> bool:
        return any(r.key == CHECKPOINT.encode() and load_snapshot(r.value, key=key).meta["examples"] == n
                   for r in found[-6:])
    return until


async def http(url: str) -> tuple[str, bytes]:
    def fetch() -> tuple[str, bytes]:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.headers["Content-Type"], response.read()
    return await asyncio.to_thread(fetch)


async def report_with(base: str, n: int, learner: LearnerProcess, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        assert learner.proc.poll() is None, f"learner died:\n{learner.log_tail()}"
        try:
            report = orjson.loads((await http(f"{base}/metrics.json"))[1])
            if report["examples"] == n:
                return dict(report)
        except OSError:
            pass
        assert time.monotonic() < deadline, f"no report with {n} examples:\n{learner.log_tail()}"
        await asyncio.sleep(0.2)


async def test_learner_publishes_serves_and_resumes_after_sigkill(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(snapshot_every=5, snapshot_seconds=0.5, learner_web_port=free_port())
    key, bootstrap = settings.snapshot_key.encode(), settings.bootstrap
    topic, snapshot_topic = settings.topic("examples"), settings.topic("model-snapshots")
    base = f"http://{settings.web_host}:{settings.learner_web_port}"
    first, later = examples(range(6)), examples(range(6, 9))
    await produce(bootstrap, topic, records([*first[:6], b"{not json", *first[6:]]))  # offsets 0..12

    learner = LearnerProcess(settings, tmp_path / "learner-1.log")
    try:
        found = await consume(bootstrap, snapshot_topic, until=checkpoint_with(key, 12), timeout=25)
        published = snapshots(found, key)
        assert {s.name for s in published} == {"prod", "baseline", CHECKPOINT}
        for name in ("prod", "baseline"):  # one version per round, from 1, each a River model that predicts
            versions = [s.version for s in published if s.name == name]
            assert versions == list(range(1, len(versions) + 1))
        newest = {s.name: s for s in published}
        assert newest["prod"].meta == newest[CHECKPOINT].meta == {"examples": 12, "offset": 12}
        assert 0.0 < newest["prod"].model.predict_proba_one({"cand_position": 0.0, "f": 0.1})[True] < 1.0

        metrics = await consume(bootstrap, settings.topic("metrics"), timeout=10,
                                until=lambda found: any(orjson.loads(r.value)["examples"] == 12 for r in found))
        reported = orjson.loads(metrics[-1].value)
        assert metrics[-1].key == b"learner"
        assert (reported["examples"], reported["duplicates"], reported["rejected"]) == (12, 0, 1)
        assert reported["models"]["prod"]["cumulative"]["n"] == 12
        assert reported["models"]["baseline"]["cumulative"]["mean_score"] == pytest.approx(0.1)

        content_type, body = await http(f"{base}/metrics")
        assert content_type.startswith("text/plain; version=0.0.4")
        samples = parse(body.decode())
        assert get(samples, "streamscore_learner_examples_total") == 12
        assert get(samples, "streamscore_learner_rejected_total") == 1
        assert get(samples, "streamscore_model_examples_total", model="baseline", arm="A") == 12
        assert get(samples, "streamscore_snapshots_published_total", model="prod") == newest["prod"].version
        content_type, body = await http(f"{base}/metrics.json")
        assert content_type.startswith("application/json")
        assert orjson.loads(body)["snapshots"]["prod"] == newest["prod"].version
    finally:
        learner.kill()  # no goodbye: whatever came after the last checkpoint is lost with the process

    # Redelivered copies of every example, then new ones: each distinct example must be learned once.
    await produce(bootstrap, topic, records([*first, *later]))  # offsets 13..30
    learner = LearnerProcess(settings, tmp_path / "learner-2.log")
    try:
        found = await consume(bootstrap, snapshot_topic, until=checkpoint_with(key, 18), timeout=25)
        report = await report_with(base, 18, learner)
        assert (report["examples"], report["duplicates"], report["rejected"]) == (18, 12, 1)
        assert report["offset"] == 30
        assert report["models"]["prod"]["cumulative"]["n"] == 18
        after = [s for s in snapshots(found, key) if s.name == "prod"]
        assert [s.version for s in after] == list(range(1, len(after) + 1))  # numbering went on past the restart
        assert after[-1].version > newest["prod"].version and after[-1].meta == {"examples": 18, "offset": 30}

        # The restarted process learned exactly what one uninterrupted learner learns from the distinct examples.
        reference = Learner(["prod", "baseline"], snapshot_every=1000, key=key, metrics_window=10,
                            tripwire=Tripwire())
        for e in first + later:
            reference.learn_one(orjson.loads(orjson.dumps(e)))
        expected = dict(reference.snapshots())
        newest_blob = {r.key: r.value for r in found}
        assert payload(newest_blob[b"prod"]) == payload(expected["prod"])
        assert payload(newest_blob[b"baseline"]) == payload(expected["baseline"])
    finally:
        code = learner.stop()
    log = learner.log_path.read_text()
    assert code == 0, log
    assert "streamscore learner: broker" in log and base in log
    assert "resumed from the checkpoint: 12 examples learned, next offset 13" in log


async def test_sigterm_publishes_what_the_last_round_left_out(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(snapshot_every=1000, snapshot_seconds=600.0, learner_web_port=free_port())
    key = settings.snapshot_key.encode()
    await produce(settings.bootstrap, settings.topic("examples"), records(list(examples(range(2)))))
    learner = LearnerProcess(settings, tmp_path / "learner.log")
    try:
        await report_with(f"http://{settings.web_host}:{settings.learner_web_port}", 4, learner)
    finally:
        code = learner.stop()
    assert code == 0, learner.log_tail()
    found = await consume(settings.bootstrap, settings.topic("model-snapshots"), expect=3, timeout=10)
    assert [(s.name, s.version, s.meta) for s in snapshots(found, key)] == [
        ("prod", 1, {"examples": 4, "offset": 3}), ("baseline", 1, {"examples": 4, "offset": 3}),
        (CHECKPOINT, 1, {"examples": 4, "offset": 3})]


async def test_start_skips_a_forged_checkpoint_and_numbers_past_published_versions(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    key = settings.snapshot_key.encode()
    learner = Learner(["prod", "baseline"], snapshot_every=1, key=key, metrics_window=10, tripwire=Tripwire())
    learner.learn_one(examples(range(1))[0], offset=0)
    genuine = dict(learner.snapshots())
    learner.learn_one(examples(range(1))[1], offset=1)
    later = dict(learner.snapshots())  # round 2 of the models was published, then the process died ...
    forged = bytearray(later[CHECKPOINT])
    forged[-1] ^= 0xFF  # ... and someone wrote a checkpoint without the key
    await produce(settings.bootstrap, settings.topic("model-snapshots"), [
        (b"prod", genuine["prod"]), (CHECKPOINT.encode(), genuine[CHECKPOINT]),
        (b"prod", later["prod"]), (CHECKPOINT.encode(), bytes(forged))])

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        checkpoints, published = await read_snapshots(settings, consumer)
    finally:
        await consumer.stop()
    assert published == {"prod": 2}
    restored = restore_learner(settings, checkpoints)
    assert (restored.examples, restored.offset, restored.versions) == (1, 0, {"prod": 1, "baseline": 1})
    restored.advance_versions(published)
    assert restored.versions == {"prod": 2, "baseline": 1}


async def test_a_record_the_broker_refuses_stops_the_learner_with_the_remedy(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    learner = Learner(["prod", "baseline"], snapshot_every=1, key=b"k", metrics_window=10, tripwire=Tripwire())
    learner.learn_one(examples(range(1))[0], offset=0)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, max_request_size=1024)  # < the checkpoint
    await producer.start()
    try:
        with pytest.raises(SnapshotTooLarge, match=r"max\.message\.bytes") as refused:
            await LiveLearner(settings, learner, producer).publish(None)
    finally:
        await producer.stop()
    assert "__learner__" in str(refused.value)


async def test_the_learner_trains_item_vectors_from_events_and_ships_them_signed(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    # One partition: the learner then reads the events in the file's order, so its versions are the replay's.
    settings = settings_factory(partitions=1, item_vectors=True, item_vectors_every=600.0,
                                learner_web_port=free_port())
    key = settings.snapshot_key.encode()
    events, _ = simulate(users=40, events=1500, seed=3)
    raws = [orjson.dumps(e) for e in events]
    await produce(settings.bootstrap, settings.topic("events"),
                  [(e["user_id"].encode(), raw) for e, raw in zip(events, raws, strict=True)])
    trainer = ItemVectorTrainer.from_settings(settings)
    expected = [v for i, raw in enumerate(raws) for v in trainer.offer(raw, Source("events", 0, i))]
    assert len(expected) >= 2

    learner = LearnerProcess(settings, tmp_path / "learner.log")
    try:
        found = await consume(settings.bootstrap, settings.topic("model-snapshots"), timeout=30,
                              until=lambda got: sum(r.key == ITEM_VECTORS.encode() for r in got) >= len(expected))
    finally:
        assert learner.stop() == 0, learner.log_tail()
    shipped = [load_snapshot(r.value, key=key) for r in found if r.key == ITEM_VECTORS.encode()]
    assert [s.version for s in shipped] == [v.version for v in expected]
    for snapshot, vectors in zip(shipped, expected, strict=True):
        assert snapshot.model.ids == vectors.ids
        assert snapshot.model.matrix.tobytes() == vectors.matrix.tobytes()
        assert snapshot.meta == {"trained_until": vectors.trained_until, "items": len(vectors.ids), "dim": 16}
