"""Section 3, replay throughput: the worker's processor on one core (events per CPU second), no broker.

The events are encoded once up front (as a topic hands them over), then piped through
:class:`~streams.replay.ReplayDriver` with ``learn=False`` and ``learn=True``. Per stage, µs per event is the
stage's total time over the events piped (so stages that run for a few events only weigh what they cost).
``unattributed`` is ``event`` (all of ``process_one``) less its timed parts: the per-event bookkeeping
between stages (the state snapshot for rollback, the deadline heap, counters). Baseline: orjson.loads alone.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from bench.mix import make_mix
from bench.plan import Plan
from bench.report import figure
from streams.replay.driver import ReplayDriver
from streams.settings import Settings

INSIDE_EVENT = ("decode", "label_join", "features", "score", "update")
"""Stages timed inside ``process_one`` (whose total is the ``event`` stage)."""


def decode_only(raws: list[bytes], repeat: int = 5) -> float:
    """Events per CPU second of the floor, decoding each event and nothing else: the best of ``repeat``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        for raw in raws:
            orjson.loads(raw)
        best = min(best, time.thread_time() - started)
    return len(raws) / max(best, 1e-9)


def replay(raws: list[bytes], learn: bool) -> dict[str, Any]:
    driver = ReplayDriver(Settings(), learn=learn, sink=lambda out: None)
    started, cpu_started = time.perf_counter(), time.thread_time()
    for raw in raws:
        driver.pipe(raw)
    seconds, cpu_s = time.perf_counter() - started, time.thread_time() - cpu_started
    stages = driver.processor.timings.snapshot()
    per_event = {name: s["sum"] / len(raws) * 1e6 for name, s in stages.items()}
    if "event" in per_event:
        per_event["unattributed"] = per_event["event"] - sum(per_event.get(s, 0.0) for s in INSIDE_EVENT)
    return {
        "events_per_cpu_s": len(raws) / cpu_s,
        "events_per_s": len(raws) / seconds,
        "seconds": seconds,
        "cpu_share": cpu_s / seconds,
        "us_per_event": {k: round(v, 1) for k, v in per_event.items()},
        "stage_calls": {name: s["count"] for name, s in stages.items()},
        "stage_p99_s": {name: s["p99"] for name, s in stages.items()},
        "outputs": dict(driver.counts),
        "users": len(driver.states),
    }


def run(plan: Plan) -> dict[str, Any]:
    mix = make_mix(plan.replay_users, plan.replay_events, seed=5)
    raws = [value for _, value in mix.payload]
    floor = decode_only(raws)
    runs = {"learn_false": replay(raws, learn=False), "learn_true": replay(raws, learn=True)}
    figures: dict[str, Any] = {"orjson_loads events/CPU-s": figure(floor, "events/cpu-s")}
    for name, r in runs.items():
        figures[f"{name} events/CPU-s"] = figure(r["events_per_cpu_s"], "events/cpu-s", {"orjson_loads": floor})
    share = runs["learn_true"]["cpu_share"]
    for stage, us in runs["learn_true"]["us_per_event"].items():
        figures[f"learn_true {stage}"] = figure(us, "µs/event", note=f"wall clock; the run had {share:.0%} of a core")
    return {"figures": figures, "runs": runs, "mix": mix.describe(),
            "note": "one thread; events per CPU second of that thread (events_per_s is per wall second, lower "
                    "when the machine is busy: cpu_share says how much of a core the run had); outputs discarded "
                    "(a sink that drops them), as a topic write is not part of this figure"}
