"""Timing real worker processes: from their first event consumed to the last score they sent.

Start-up (imports, group join, table recovery) is excluded: the clock starts when the workers' counters first
show an event in (polled every 0.1 s; the midpoint of the poll interval), and stops at the timestamp of the
last score record (the worker's producer stamps it when it sends), or when the counters show every event in if
that is later. All are this machine's wall clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench.kafka import read_all
from bench.procs import cpu_seconds, worker_counters, worker_stages
from streams.settings import Settings
from tests.fixtures import WorkerProcess

POLL = 0.1
BATCH_STAGES = ("event", "take")
"""The worker's stages in its processing loop, which do not overlap: ``process_one``, and a checkpoint taking
(encoding) the changed rows. A checkpoint's ``deliver`` (awaiting the outputs) and ``state_write`` run in the
background while the loop goes on."""


@dataclass
class WorkerRun:
    events_per_s: float
    seconds: float
    startup_s: float
    """From spawning the processes to their first event in."""
    events_in: int
    """Events the workers counted in: more than the topic holds means some were redelivered (rebalance)."""
    scores: int
    """Distinct requests with a score on the scores topic."""
    cpu_s: float | None
    """CPU seconds the worker processes used from the first event in to the end (start-up excluded)."""
    us_per_event: dict[str, float]
    """Time per event in each of the worker's own stages (summed over workers), and ``outside_batches``: the
    wall time per event not spent in them (faust's stream, commits and changelog, waiting)."""

    def describe(self) -> dict[str, Any]:
        return {"events_per_s": self.events_per_s, "seconds": self.seconds, "startup_s": self.startup_s,
                "events_in": self.events_in, "scores": self.scores, "cpu_s": self.cpu_s,
                "events_per_cpu_s": self.events_per_s * self.seconds / self.cpu_s if self.cpu_s else None,
                "us_per_event": self.us_per_event}


class WorkerFailed(RuntimeError):
    pass


async def _counters(workers: list[WorkerProcess]) -> list[dict[str, Any]]:
    for w in workers:
        if not w.alive:
            raise WorkerFailed(f"worker exited {w.proc.returncode}:\n{w.log_tail(30)}")
    return [c or {} for c in await asyncio.gather(*(worker_counters(w.settings.web_port) for w in workers))]


async def time_workers(settings: list[Settings], logs: Path, events: int, requests: set[str], timeout: float,
                       feed: Callable[[], Awaitable[None]] | None = None) -> WorkerRun:
    """Start one worker per settings, wait until they took ``events`` and scored every request, stop them.

    Without ``feed`` the events are already in the topic, and the clock starts at the first event in. With
    ``feed``, the topic is empty: every worker is first seen to own partitions (probe requests until each has
    taken one), so no rebalance falls inside the measure; then the clock starts and ``feed`` fills the topic.
    """
    spawned = time.time()
    workers = [WorkerProcess(s, logs / f"worker-{i}.log") for i, s in enumerate(settings)]
    try:
        deadline = time.monotonic() + timeout
        first_in: float | None = None
        first_cpu: float | None = None
        probes = 0
        if feed is not None:
            probes = await _until_all_assigned(workers, settings[0], deadline)
            first_in, first_cpu = time.time(), _cpu(workers)
            await feed()
        all_in: float | None = None
        last_poll = spawned if first_in is None else first_in
        max_in = 0
        while True:
            counters = await _counters(workers)
            now = time.time()
            events_in = sum(c.get("events_in", 0) for c in counters) - probes
            max_in = max(max_in, events_in)
            # A counter moves between two polls: take the middle of the interval.
            if first_in is None and events_in:
                first_in = (last_poll + now) / 2
                first_cpu = _cpu(workers)
            if all_in is None and events_in >= events:
                all_in = (last_poll + now) / 2
            last_poll = now
            if all_in is not None and sum(c.get("requests_scored", 0) for c in counters) >= len(requests):
                scored, last_score = await _scores(settings[0], requests)
                if scored >= len(requests):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers did not take {events} events and score {len(requests)} requests in "
                                   f"{timeout:.0f} s; counters: {counters}")
            await asyncio.sleep(POLL)
        assert first_in is not None
        # The stream may end with events that send nothing (views, clicks): the end is whichever came last.
        seconds = max(last_score, all_in) - first_in
        cpu_now = _cpu(workers)
        cpu_s = None if cpu_now is None or first_cpu is None else cpu_now - first_cpu
        stages = await _stages(workers, events + probes, seconds)
        return WorkerRun(events / seconds, seconds, first_in - spawned, max_in, scored, cpu_s, stages)
    finally:
        for w in workers:
            w.stop()


async def _until_all_assigned(workers: list[WorkerProcess], settings: Settings, deadline: float) -> int:
    """Send a probe request to every partition each second until every worker has taken one; return how many
    probes were sent (they are counted in the workers' events_in)."""
    partitions = settings.partitions
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap)
    await producer.start()
    sent = 0
    try:
        while True:
            for p in range(partitions):
                user = f"scaling-probe-{sent}"
                event = {"event_id": user, "user_id": user, "ts": 1_600_000_000.0, "type": "request",
                         "request_id": user, "candidates": ["a"]}
                await producer.send_and_wait(settings.topic("events"), orjson.dumps(event), key=user.encode(),
                                             partition=p)
                sent += 1
            for _ in range(10):
                await asyncio.sleep(POLL)
                if all(c.get("events_in", 0) for c in await _counters(workers)):
                    return sent
            if time.monotonic() > deadline:
                raise TimeoutError("the workers never all owned partitions (no stable consumer group)")
    finally:
        await producer.stop()


def _cpu(workers: list[WorkerProcess]) -> float | None:
    cpu = [cpu_seconds(w.proc.pid) for w in workers]
    return None if None in cpu else sum(c for c in cpu if c is not None)


async def _stages(workers: list[WorkerProcess], events: int, seconds: float) -> dict[str, float]:
    per_worker = await asyncio.gather(*(worker_stages(w.settings.web_port) for w in workers))
    sums: dict[str, float] = {}
    for stages in per_worker:
        for name, histogram in (stages or {}).items():
            sums[name] = sums.get(name, 0.0) + float(histogram.get("sum") or 0.0)
    if not sums:
        return {}
    out = {name: round(total / events * 1e6, 1) for name, total in sorted(sums.items())}
    inside = sum(sums.get(name, 0.0) for name in BATCH_STAGES) / len(workers)
    out["outside_batches"] = round((seconds - inside) / events * 1e6 * len(workers), 1)
    return out


async def _scores(settings: Settings, requests: set[str]) -> tuple[int, float]:
    """(distinct expected requests scored, timestamp of the last score record)."""
    records = await read_all(settings.bootstrap, settings.topic("scores"))
    seen = {orjson.loads(r.value)["request_id"] for r in records}
    return len(seen & requests), max((r.timestamp for r in records), default=0.0)
