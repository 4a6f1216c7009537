"""Section 4, state size: bytes per user on disk for a worker holding N users, and its restart-to-ready times.

The reference mix gives a user ~2.5 events on average (heavy-tailed activity), too many for 100k users in the
time budget at the worker's live rate; so this stream gives every user the mix's two main event types in its
proportions: a view each, and a request of 4 candidates for every third user. The same stream is replayed in
process for the encoded state bytes per user (what the worker's table stores, before RocksDB) as the baseline
of the on-disk figure; restart times are reported against the same worker's first start with no state.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from bench.context import Context
from bench.kafka import fill
from bench.procs import worker_counters
from bench.report import figure
from bench.restart import ready_after_start
from bench.state_size import worst_case
from streams.replay.driver import ReplayDriver
from streams.settings import Settings
from tests.fixtures import WorkerProcess, create_test_topics

REQUEST_EVERY = 3
CANDIDATES = 4


def user_stream(users: int, start_ts: float = 1_700_000_000.0) -> list[dict[str, Any]]:
    """A view for every user, a request for every third, in event-time order (0.5 s apart).

    >>> [e["type"] for e in user_stream(4)]
    ['view', 'request', 'view', 'view', 'view', 'request']
    """
    events: list[dict[str, Any]] = []
    for u in range(users):
        user = f"su{u}"
        events.append({"event_id": f"s:v{u}", "user_id": user, "type": "view", "item_id": f"i{u % 5000}",
                       "props": {"category": f"c{u % 12}"}})
        if u % REQUEST_EVERY == 0:
            events.append({"event_id": f"s:r{u}", "user_id": user, "type": "request", "request_id": f"s:r{u}",
                           "candidates": [{"item_id": f"i{(u + k * 7) % 5000}", "price": 20.0 + (u + k) % 90,
                                           "category": f"c{(u + k) % 12}"} for k in range(CANDIDATES)],
                           "context": {"device": ("mobile", "desktop")[u % 2]}})
    for i, event in enumerate(events):
        event["ts"] = start_ts + i * 0.5
    return events


def disk_bytes(state_dir: Path) -> dict[str, int]:
    """Bytes on disk under the worker's state directory, per table (``user-state``, ``pending``) and in all."""
    sizes: dict[str, int] = defaultdict(int)
    for f in state_dir.rglob("*"):
        if not f.is_file():
            continue
        size = f.stat().st_size
        sizes["total"] += size
        table = next((re.sub(r"-\d+\.db$", "", p.name) for p in f.parents if p.name.endswith(".db")), "other")
        sizes[table] += size
    return dict(sizes)


def encoded(events: list[dict[str, Any]]) -> dict[str, float]:
    driver = ReplayDriver(Settings(), sink=lambda out: None)
    driver.pipe_all(orjson.dumps(e) for e in events)
    sizes = [len(b) for b in driver.states.values()]
    return {"users": len(sizes), "mean": statistics.fmean(sizes), "p50": statistics.median(sizes),
            "max": max(sizes), "pending_requests": len(driver.pending),
            "pending_bytes": sum(len(b) for b in driver.pending.values())}


async def _wait_processed(worker: WorkerProcess, events: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive:
            raise RuntimeError(f"worker died:\n{worker.log_tail(30)}")
        counters = await worker_counters(worker.settings.web_port) or {}
        if counters.get("events_in", 0) >= events:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the worker did not take {events} events in {timeout:.0f} s")


async def one_size(ctx: Context, users: int) -> dict[str, Any]:
    section_started = time.perf_counter()
    stream = user_stream(users)
    settings = ctx.worker_settings(f"state-{users}")[0]
    create_test_topics(settings)
    logs = settings.data_dir.parent
    worker, cold = await ready_after_start(settings, logs / "w-cold.log", 0)
    try:
        started = time.perf_counter()
        await fill(ctx.bootstrap, settings.topic("events"), [(str(e["user_id"]).encode(), orjson.dumps(e))
                                                            for e in stream])
        await _wait_processed(worker, len(stream) + 1, timeout=300 + len(stream) / 50)
        load_seconds = time.perf_counter() - started
        await asyncio.sleep(2)  # the last batch's state writes follow its outputs
        running = disk_bytes(settings.state_dir)
    finally:
        worker.stop()
    stopped = disk_bytes(settings.state_dir)
    restart: dict[str, float] = {}
    worker, restart["after_clean_stop"] = await ready_after_start(settings, logs / "w-stop.log", 1)
    worker.kill()
    worker, restart["after_sigkill"] = await ready_after_start(settings, logs / "w-kill.log", 2)
    worker.stop()
    if ctx.plan.restart_from_changelog:
        # The data directory lost: every state comes back from the changelog topics.
        shutil.rmtree(settings.state_dir)
        worker, restart["from_changelog"] = await ready_after_start(settings, logs / "w-lost.log", 3)
        worker.stop()
    encoding = time.perf_counter()
    replayed = await asyncio.to_thread(encoded, stream)
    encode_seconds = time.perf_counter() - encoding
    seconds = time.perf_counter() - section_started
    # What grows with the users (for the estimate of a larger size); process start-ups do not.
    scaling = load_seconds + restart.get("from_changelog", 0.0) + encode_seconds
    return {"users": users, "events": len(stream), "load_events_per_s": len(stream) / load_seconds,
            "disk_bytes_running": running, "disk_bytes_after_clean_stop": stopped, "encoded_state": replayed,
            "cold_start_to_ready_s": cold, "restart_to_ready_s": restart, "seconds": seconds,
            "seconds_growing_with_users": scaling}


def estimate(previous: dict[str, Any], users: int) -> float:
    """Seconds a run of ``users`` would take, from the run of a smaller size (linear in the users).

    >>> estimate({"users": 10, "seconds": 30.0, "seconds_growing_with_users": 10.0}, 100)
    120.0
    """
    growing = previous["seconds_growing_with_users"]
    return previous["seconds"] - growing + growing * users / previous["users"]


def size_figures(r: dict[str, Any]) -> dict[str, Any]:
    label = f"{r['users'] // 1000}k users"
    users, encoded_mean = r["users"], r["encoded_state"]["mean"]
    figures = {
        f"{label} disk bytes/user": figure(r["disk_bytes_after_clean_stop"]["total"] / users, "B",
                                           {"encoded_state": encoded_mean}, note="after a clean stop"),
        f"{label} disk bytes/user (running)": figure(r["disk_bytes_running"]["total"] / users, "B",
                                                     {"encoded_state": encoded_mean},
                                                     note="while running: WAL and unflushed files included"),
        f"{label} encoded state bytes/user": figure(encoded_mean, "B"),
        f"{label} load": figure(r["load_events_per_s"], "events/s", note="produce and process the stream"),
        f"{label} cold start": figure(r["cold_start_to_ready_s"], "s", note="empty state, to ready"),
    }
    for kind, seconds in r["restart_to_ready_s"].items():
        figures[f"{label} restart {kind}"] = figure(seconds, "s", {"cold_start": r["cold_start_to_ready_s"]})
    return figures


async def run(ctx: Context) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    sizes: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    previous: dict[str, Any] | None = None
    for users in ctx.plan.state_users:
        if previous is not None:
            needed, left = estimate(previous, users), ctx.remaining()
            if needed > left:
                skipped[f"{users:,} users"] = (
                    f"not run: estimated {needed / 60:.0f} min from the {previous['users']:,}-user run "
                    f"({previous['load_events_per_s']:.0f} events/s), {max(0.0, left) / 60:.0f} min left of the "
                    f"{ctx.plan.budget_seconds / 60:.0f}-min budget")
                continue
        previous = sizes[str(users)] = await one_size(ctx, users)
        figures.update(size_figures(previous))
    if ctx.plan.worst_case_state:
        heavy = await asyncio.to_thread(worst_case)
        figures["worst-case state bytes/user"] = figure(float(heavy), "B", note="every bound of the state reached")
    return {"figures": figures, "sizes": sizes, "skipped": skipped,
            "stream": f"per user: one view, and for every {REQUEST_EVERY}rd user a request of {CANDIDATES} "
                      "candidates (the mix's main types and request share)",
            "ready": "restart to ready: from spawning the worker to reading back the score of a request produced "
                     "right after the spawn (process start-up included: that is what a restart costs)"}
