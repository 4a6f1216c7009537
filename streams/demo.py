"""``streamscore demo``: the whole path on one machine, in a couple of minutes.

Starts a local broker in a fresh directory, creates the topics, starts a worker process, produces a
synthetic stream (plus two malformed records, to show the dead-letter path), prints scores as they arrive,
and stops everything it started — after the last score, after ``seconds``, or on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.admin import create_topics
from streams.broker import free_port, local_broker
from streams.settings import Settings, to_env
from streams.simulate import simulate

MALFORMED = [
    (b"demo-user", b"{this is not json"),
    (b"demo-user", b'{"event_id":"bad-2","user_id":"demo-user","ts":1700000000000,"type":"view"}'),
]


def _format_score(record: dict[str, Any]) -> str:
    scores = sorted(record["scores"], key=lambda s: -s["score"])
    top = "  ".join(f"{s['item_id']}={s['score']:.3f}" for s in scores[:3])
    more = f"  (+{len(scores) - 3} more)" if len(scores) > 3 else ""
    return (f"score  {record['request_id']:<10} user={record['user_id']:<6} arm={record['arm']} "
            f"{record['model']}@v{record['model_version']}  {top}{more}")


async def _produce_and_print(settings: Settings, events: list[dict[str, object]], seconds: float,
                             worker: subprocess.Popen[bytes]) -> tuple[int, int]:
    expected = sum(1 for e in events if e["type"] == "request")
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    consumer = AIOKafkaConsumer(settings.topic("scores"), settings.topic("dead-letter"),
                                bootstrap_servers=settings.bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        for e in events:
            await producer.send(settings.topic("events"), key=str(e["user_id"]).encode(), value=orjson.dumps(e))
        for key, value in MALFORMED:
            await producer.send(settings.topic("events"), key=key, value=value)
        await producer.flush()
        print(f"produced {len(events)} events ({expected} requests) and {len(MALFORMED)} malformed records",
              flush=True)
        scored = dead = 0
        deadline = time.monotonic() + seconds
        while (scored < expected or dead < len(MALFORMED)) and time.monotonic() < deadline:
            if worker.poll() is not None:
                print(f"the worker exited with status {worker.returncode}; see its log above", flush=True)
                break
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for m in messages:
                    record = orjson.loads(m.value or b"{}")
                    if tp.topic == settings.topic("scores"):
                        scored += 1
                        print(_format_score(record), flush=True)
                    else:
                        dead += 1
                        print(f"dead-letter  {record['error']}", flush=True)
        return scored, dead
    finally:
        await consumer.stop()
        await producer.stop()


def run_demo(settings: Settings, *, users: int, events: int, seconds: float, broker_kind: str) -> int:
    demo_dir = settings.data_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    broker = local_broker(broker_kind, demo_dir / "broker", free_port())
    print(f"starting a local {broker_kind} broker in {broker.data_dir} ...", flush=True)
    settings = replace(settings, bootstrap=broker.start(), data_dir=demo_dir, web_port=free_port())
    worker: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        asyncio.run(create_topics(settings))
        print(f"topics created on {settings.bootstrap}; starting a worker "
              f"(web on http://{settings.web_host}:{settings.web_port}/counters/) ...", flush=True)
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "--log-level", "warning", "worker"],
                                  env={**os.environ, **to_env(settings)})
        stream, truth = simulate(users=users, events=events, seed=settings.model_seed)
        scored, dead = asyncio.run(_produce_and_print(settings, stream, seconds, worker))
        print(f"\n{scored} requests scored, {dead} records dead-lettered, in {time.monotonic() - started:.1f} s "
              f"(the simulator's oracle AUC for this stream is {truth['oracle']['auc']:.3f})", flush=True)
        return 0 if scored and dead == len(MALFORMED) else 1
    except KeyboardInterrupt:
        print("\ninterrupted; stopping", flush=True)
        return 130
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        broker.stop()
        print("worker and broker stopped", flush=True)
