"""Section 6, the learner keeping up: examples it learns per CPU second against the examples one worker emits.

The worker side is the processor alone on one core (the replay of section 3 with ``learn=False``): the most
examples one worker can emit per CPU second. A live worker emits fewer, as it also pays for the broker and its
tables, so the ratio is a lower bound on how far ahead of one worker the learner is. The learner side is
:class:`~models.learner.Learner` on those examples, decoded as it gets them from the ``examples`` topic, with the
default settings (every negative learned) and with negative subsampling at 0.25 (``negative_sample_rate``).
The learner reads one partition, so it must keep up with every worker together; the ratio to one worker says
how many it can follow (``docs/learning.md``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import orjson

from bench.mix import make_mix
from bench.plan import Plan
from bench.report import figure
from models.learner import learner_from_settings
from streams.core.records import EXAMPLES, Output
from streams.replay.driver import ReplayDriver
from streams.settings import Settings

SUBSAMPLED_RATE = 0.25


def worker_examples(raws: list[bytes], settings: Settings) -> tuple[list[bytes], float]:
    """The examples the processor emits for ``raws``, and its CPU seconds."""
    examples: list[bytes] = []

    def sink(out: Output) -> None:
        if out.topic == EXAMPLES:
            examples.append(out.value)

    driver = ReplayDriver(settings, learn=False, sink=sink)
    started = time.thread_time()
    for raw in raws:
        driver.pipe(raw)
    driver.finish()
    return examples, time.thread_time() - started


def learn(examples: list[bytes], settings: Settings) -> float:
    """CPU seconds a fresh learner takes over ``examples`` (decoding included, snapshots left out)."""
    learner = learner_from_settings(settings)
    started = time.thread_time()
    for blob in examples:
        learner.learn_one(orjson.loads(blob))
    return time.thread_time() - started


def run(plan: Plan) -> dict[str, Any]:
    mix = make_mix(plan.replay_users, plan.replay_events, seed=5)
    settings = Settings()
    examples, worker_cpu = worker_examples([value for _, value in mix.payload], settings)
    emitted = len(examples) / max(worker_cpu, 1e-9)
    runs = {"all negatives": learn(examples, settings),
            f"negatives at {SUBSAMPLED_RATE}": learn(examples, dataclasses.replace(
                settings, negative_sample_rate=SUBSAMPLED_RATE))}
    figures: dict[str, Any] = {
        "worker examples/CPU-s": figure(emitted, "examples/cpu-s", note=f"{len(examples)} records on examples "
                                        f"from {len(mix.payload)} events, processor alone (a request's fake "
                                        "negatives are one record)"),
    }
    for name, cpu in runs.items():
        figures[f"learner ({name}) examples/CPU-s"] = figure(len(examples) / max(cpu, 1e-9), "examples/cpu-s",
                                                            {"worker_examples": emitted})
    return {"figures": figures, "examples": len(examples), "events": len(mix.payload),
            "cpu_seconds": {"worker": round(worker_cpu, 3), **{k: round(v, 3) for k, v in runs.items()}},
            "note": "one thread each, CPU seconds; the learner decodes each example as it would from the topic"}
