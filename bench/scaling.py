"""Section 5, scaling: one and then two worker processes of one application on a 4-partition topic.

Both measures use the reference mix of section 1, on topics of their own. Started at once on a pre-filled
topic, two workers could leave the consumer group unsettled for minutes on noida-db (seen here: one worker
owning all four partitions and spinning on fetches, the other owning none), so here the workers start on an
empty topic, are seen to own partitions (probe requests until each has taken one), and then the topic is
filled while the clock runs: a group that never settles fails the section rather than skewing the figure.
"""

from __future__ import annotations

from typing import Any

from bench.context import Context
from bench.kafka import fill
from bench.live import Prefilled
from bench.report import figure
from bench.workers import time_workers
from tests.fixtures import create_test_topics


async def run_group(ctx: Context, prefilled: Prefilled, workers: int) -> dict[str, Any]:
    mix = await prefilled.ensure()
    settings = ctx.worker_settings(f"scaling-{workers}w", workers=workers)
    create_test_topics(settings[0])

    async def feed() -> None:
        await fill(ctx.bootstrap, settings[0].topic("events"), mix.payload)

    run = await time_workers(settings, settings[0].data_dir.parent, len(mix.events), set(mix.request_ids),
                             timeout=240 + len(mix.events) / 50, feed=feed)
    return run.describe()


async def run(ctx: Context, prefilled: Prefilled) -> dict[str, Any]:
    runs = {"1 worker": await run_group(ctx, prefilled, 1), "2 workers": await run_group(ctx, prefilled, 2)}
    one, two = runs["1 worker"], runs["2 workers"]
    figures = {
        "1 worker events/s": figure(one["events_per_s"], "events/s"),
        "2 workers events/s": figure(two["events_per_s"], "events/s", {"1 worker": one["events_per_s"]}),
        "2 workers events/CPU-s": figure(two["events_per_cpu_s"], "events/cpu-s",
                                         {"1 worker": one["events_per_cpu_s"]}),
    }
    return {"figures": figures, "runs": runs,
            "timing": "workers seen to own partitions first; the clock starts when the (empty) topic starts being "
                      "filled with the mix, and stops at the last score or the last event in"}
