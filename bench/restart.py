"""Restart-to-ready time of a worker holding N users, after SIGKILL and after a clean stop.

Run: ``python -m bench.restart [USERS]``. "Ready" is the moment the restarted worker has scored a request
produced right after its start. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from streams.settings import Settings
from streams.simulate import simulate
from tests.fixtures import (
    WorkerProcess,
    consume,
    covers,
    create_test_topics,
    events_payload,
    make_settings,
    produce,
    start_test_broker,
)


def _probe(n: int) -> dict[str, object]:
    return {"event_id": f"probe-{n}", "user_id": f"probe-user-{n}", "ts": 1_800_000_000.0 + n, "type": "request",
            "request_id": f"probe-{n}", "candidates": ["a", "b"]}


async def _ready_after_start(settings: Settings, log: Path, n: int) -> tuple[WorkerProcess, float]:
    started = time.perf_counter()
    worker = WorkerProcess(settings, log)
    await produce(settings.bootstrap, settings.topic("events"), events_payload([_probe(n)]))
    await consume(settings.bootstrap, settings.topic("scores"), until=covers({f"probe-{n}"}), timeout=300,
                  worker=worker)
    return worker, time.perf_counter() - started


async def run(settings: Settings, users: int, base: Path) -> None:
    stream, _ = simulate(users=users, events=users * 6, seed=3)
    worker, cold = await _ready_after_start(settings, base / "w0.log", 0)
    await produce(settings.bootstrap, settings.topic("events"), events_payload(stream))
    requests = {str(e["request_id"]) for e in stream if e["type"] == "request"}
    t = time.perf_counter()
    await consume(settings.bootstrap, settings.topic("scores"), until=covers(requests), timeout=900, worker=worker)
    print(f"{len(stream):,} events of {users:,} users processed in {time.perf_counter() - t:.1f} s "
          f"(first start to ready: {cold:.1f} s)")
    state_bytes = sum(f.stat().st_size for f in (settings.state_dir).rglob("*") if f.is_file())
    print(f"RocksDB state on disk: {state_bytes / 1e6:.1f} MB, {state_bytes / users:,.0f} bytes per user")
    worker.kill()
    worker, after_kill = await _ready_after_start(settings, base / "w1.log", 1)
    print(f"restart to ready after SIGKILL (same data dir): {after_kill:.1f} s")
    worker.stop()
    worker, after_stop = await _ready_after_start(settings, base / "w2.log", 2)
    print(f"restart to ready after a clean stop: {after_stop:.1f} s")
    worker.stop()
    shutil.rmtree(settings.state_dir)
    worker, from_changelog = await _ready_after_start(settings, base / "w3.log", 3)
    print(f"restart to ready with the data dir lost (state rebuilt from the changelog): {from_changelog:.1f} s")
    worker.stop()


def main(users: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    broker = start_test_broker(base / "broker", kind="noida")
    try:
        settings = make_settings(broker, base / "data", partitions=4, batch_size=500, log_level="warning")
        create_test_topics(settings)
        asyncio.run(run(settings, users, base))
    finally:
        if broker.local is not None:
            broker.local.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
