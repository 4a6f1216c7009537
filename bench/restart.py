"""Restart-to-ready time of a worker holding N users, after SIGKILL and after a clean stop.

Run: ``python -m bench.restart [USERS]`` (the benchmark's state section uses the same functions). "Ready" is
the moment the restarted worker has scored a request produced right after its start. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.kafka import end_offsets, wait_for_request
from streams.settings import Settings
from streams.tools.simulate import simulate
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
    # On the streams' own timeline (they start at 1.7e9): a time years ahead of its broker timestamp is a bad
    # time (docs/event-time.md); a probe behind the stream's newest event is merely late, and scored at once.
    return {"event_id": f"probe-{n}", "user_id": f"probe-user-{n}", "ts": 1_700_000_000.0 + n, "type": "request",
            "request_id": f"probe-{n}", "candidates": ["a", "b"]}


async def ready_after_start(settings: Settings, log: Path, n: int) -> tuple[WorkerProcess, float]:
    """Start a worker and return it with the seconds until it scored probe request ``n``."""
    since = await end_offsets(settings.bootstrap, settings.topic("scores"))
    started = time.perf_counter()
    worker = WorkerProcess(settings, log)
    try:
        await produce(settings.bootstrap, settings.topic("events"), events_payload([_probe(n)]))
        await wait_for_request(settings.bootstrap, settings.topic("scores"), since, f"probe-{n}", 300,
                               lambda: worker.alive)
    except BaseException:
        worker.stop()
        raise
    return worker, time.perf_counter() - started


async def restarts(settings: Settings, base: Path, worker: WorkerProcess, from_changelog: bool = True,
                   first_probe: int = 1) -> dict[str, float]:
    """Kill ``worker``, then time restarts: after SIGKILL, after a clean stop, and with the data dir lost.

    Every worker started here is stopped before returning; ``worker`` is killed.
    """
    times: dict[str, float] = {}
    worker.kill()
    worker, times["after_sigkill"] = await ready_after_start(settings, base / "restart-kill.log", first_probe)
    worker.stop()
    worker, times["after_clean_stop"] = await ready_after_start(settings, base / "restart-stop.log", first_probe + 1)
    worker.stop()
    if from_changelog:
        shutil.rmtree(settings.state_dir)
        worker, times["from_changelog"] = await ready_after_start(settings, base / "restart-lost.log",
                                                                  first_probe + 2)
        worker.stop()
    return times


async def run(settings: Settings, users: int, base: Path) -> None:
    stream, _ = simulate(users=users, events=users * 6, seed=3)
    worker, cold = await ready_after_start(settings, base / "w0.log", 0)
    await produce(settings.bootstrap, settings.topic("events"), events_payload(stream))
    requests = {str(e["request_id"]) for e in stream if e["type"] == "request"}
    t = time.perf_counter()
    await consume(settings.bootstrap, settings.topic("scores"), until=covers(requests), timeout=900, worker=worker)
    print(f"{len(stream):,} events of {users:,} users processed in {time.perf_counter() - t:.1f} s "
          f"(first start to ready: {cold:.1f} s)")
    state_bytes = sum(f.stat().st_size for f in (settings.state_dir).rglob("*") if f.is_file())
    print(f"RocksDB state on disk: {state_bytes / 1e6:.1f} MB, {state_bytes / users:,.0f} bytes per user")
    times = await restarts(settings, base, worker)
    print(f"restart to ready after SIGKILL (same data dir): {times['after_sigkill']:.1f} s")
    print(f"restart to ready after a clean stop: {times['after_clean_stop']:.1f} s")
    print("restart to ready with the data dir lost (state rebuilt from the changelog): "
          f"{times['from_changelog']:.1f} s")


def main(users: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    broker = start_test_broker(base / "broker")  # the suite's kind: Kafka unless STREAMSCORE_TEST_BROKER says
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
