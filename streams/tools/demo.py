"""``streamscore demo``: the whole path on one machine, in a couple of minutes.

Starts a local broker in a fresh directory, creates the topics, starts a worker and a learner process,
produces a synthetic stream with a known, learnable click model (plus two malformed records, to show the
dead-letter path), prints scores as they arrive (the model version climbs as the worker hot-swaps to the
learner's snapshots), then the learner's verdict: prod against the baseline and the simulator's oracle.
Stops everything it started — at the end, after ``seconds``, or on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from streams.kafka.admin import create_topics
from streams.kafka.broker import free_port, local_broker
from streams.kafka.clients import AIOKafkaConsumer, AIOKafkaProducer
from streams.settings import Settings, to_env
from streams.tools.simulate import simulate

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
        every = max(1, expected // 40)  # a readable sample of the scores, not thousands of lines
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
                        if scored % every == 1 or every == 1:
                            print(f"{scored:>6}/{expected}  {_format_score(record)}", flush=True)
                    else:
                        dead += 1
                        print(f"dead-letter  {record['error']}", flush=True)
        return scored, dead
    finally:
        await consumer.stop()
        await producer.stop()


def _learner_report(settings: Settings, wait: float) -> dict[str, Any] | None:
    """The learner's report once its example count has stopped moving for a few seconds."""
    url = f"http://{settings.web_host}:{settings.learner_web_port}/metrics.json"
    deadline, last, report = time.monotonic() + wait, -1, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                report = orjson.loads(response.read())
        except OSError:
            report = None
        if report is not None and report["examples"] == last and last > 0:
            return report
        last = report["examples"] if report else -1
        time.sleep(3.0)
    return report


def _print_verdict(report: dict[str, Any] | None, truth: dict[str, Any]) -> None:
    if report is None:
        print("the learner did not answer; see its log above", flush=True)
        return
    print(f"\nthe learner saw {report['examples']} examples and published {report['snapshots']} snapshots", flush=True)
    for name, metrics in report["models"].items():
        c, r = metrics["cumulative"], metrics["recent"]
        print(f"  {name:<9} AUC {c['auc'] or 0:.3f} log loss {c['logloss'] or 0:.4f}   "
              f"(last {r['n']}: AUC {r['auc'] or 0:.3f}, log loss {r['logloss'] or 0:.4f})", flush=True)
    print(f"  oracle    AUC {truth['oracle']['auc']:.3f} log loss {truth['oracle']['logloss']:.4f}   "
          "(the simulator's true click probabilities: the best any model can do)", flush=True)
    tripwire = report["tripwire"]
    print(f"  tripwire  {'ALERT' if tripwire['alert'] else 'quiet'}: {tripwire['reason']}", flush=True)


CHROMIUM = "/usr/bin/chromium"


def _screenshot(url: str, out: Path) -> bool:
    """A PNG of the dashboard by headless Chromium, when it is installed (``make test`` installs it)."""
    if not os.access(CHROMIUM, os.X_OK):
        return False
    with tempfile.TemporaryDirectory(prefix="streamscore-chromium-") as profile:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1440,2000",
             # Time for the page's first fetches and charts; virtual time runs ahead when the page is idle.
             "--virtual-time-budget=8000", f"--screenshot={out}", url],
            capture_output=True, timeout=120)
    return result.returncode == 0 and out.exists()


def _keep_dashboard(url: str) -> None:
    print(f"\nthe dashboard stays up at {url} — press Ctrl-C to stop everything", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def run_demo(settings: Settings, *, users: int, events: int, seconds: float, broker_kind: str,
             keep: bool = False) -> int:
    demo_dir = settings.data_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    broker = local_broker(broker_kind, demo_dir / "broker", free_port())
    print(f"starting a local {broker.describe()} broker in {broker.data_dir} ...", flush=True)
    worker: subprocess.Popen[bytes] | None = None
    learner: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        settings = replace(settings, bootstrap=broker.start(), data_dir=demo_dir, web_port=free_port(),
                           learner_web_port=free_port(), snapshot_every=min(settings.snapshot_every, 200))
        asyncio.run(create_topics(settings))
        dashboard = f"http://{settings.web_host}:{settings.web_port}/dashboard"
        print(f"topics created on {settings.bootstrap}; starting a worker and a learner ...\n"
              f"  dashboard  {dashboard}   (metrics: {settings.web_port}/metrics; in a terminal: "
              f"STREAMSCORE_WEB_PORT={settings.web_port} streamscore top)", flush=True)
        env = {**os.environ, **to_env(settings)}
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "--log-level", "warning", "worker"], env=env)
        learner = subprocess.Popen([sys.executable, "-m", "streams.cli", "--log-level", "warning", "learner"],
                                   env=env)
        print(f"  learner    http://{settings.web_host}:{settings.learner_web_port}/metrics", flush=True)
        stream, truth = simulate(users=users, events=events, seed=settings.model_seed)
        scored, dead = asyncio.run(_produce_and_print(settings, stream, seconds, worker))
        print(f"\n{scored} requests scored, {dead} records dead-lettered, in {time.monotonic() - started:.1f} s",
              flush=True)
        report = _learner_report(settings, wait=max(10.0, seconds - (time.monotonic() - started)))
        _print_verdict(report, truth)
        picture = demo_dir / "dashboard.png"
        if _screenshot(dashboard, picture):
            print(f"\na screenshot of the dashboard: {picture}", flush=True)
        if keep:
            _keep_dashboard(dashboard)
        else:
            print(f"\n(the dashboard was at {dashboard}; `streamscore demo --keep` keeps it up at the end)",
                  flush=True)
        return 0 if scored and dead == len(MALFORMED) and report else 1
    except KeyboardInterrupt:
        print("\ninterrupted; stopping", flush=True)
        return 130
    finally:
        for process in (learner, worker):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        broker.stop()
        print("learner, worker and broker stopped", flush=True)
