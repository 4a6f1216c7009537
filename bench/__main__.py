"""``python -m bench [--quick] [--only SECTION ...]``: run the benchmark, print the table, write the results.

Sections: replay, learner, live, scaling, latency, state (in that order). Everything it starts (one local broker: Apache
Kafka unless ``--broker`` names another kind; workers, baselines) is stopped at the end, also on failure or
Ctrl-C, and its temporary directory removed.
A section that fails is recorded as such and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import latency, learner, live, replay, scaling, state
from bench.context import Context
from bench.plan import FULL, QUICK, Plan
from bench.report import environment, render_table
from streams.kafka.broker import KINDS
from tests.fixtures import broker_kind_under_test, start_test_broker

SECTIONS = ("replay", "learner", "live", "scaling", "latency", "state")
RESULTS = Path(__file__).parent / "results"


async def run_sections(ctx: Context, only: tuple[str, ...], results: dict[str, Any]) -> None:
    prefilled = live.Prefilled(ctx)
    latency_samples: dict[str, Any] = {}
    runners: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "replay": lambda: asyncio.to_thread(replay.run, ctx.plan),
        "learner": lambda: asyncio.to_thread(learner.run, ctx.plan),
        "live": lambda: live.run(ctx, prefilled),
        "scaling": lambda: scaling.run(ctx, prefilled),
        "latency": lambda: latency.run(ctx, latency_samples),
        "state": lambda: state.run(ctx),
    }
    for name in SECTIONS:
        if name not in only or (name == "scaling" and not ctx.plan.scaling):
            continue
        print(f"[bench] {name} ...", flush=True)
        started = time.perf_counter()
        try:
            section = await runners[name]()
        except Exception as exc:
            traceback.print_exc()
            section = {"error": f"{type(exc).__name__}: {exc}"}
        section["section_seconds"] = round(time.perf_counter() - started, 1)
        results["sections"][name] = section
        print(f"[bench] {name} done in {section['section_seconds']:.0f} s", flush=True)
    if latency_samples:
        from bench.chart import latency_chart  # matplotlib is the bench extra's; the rest runs without it

        chart = latency_chart(latency_samples, RESULTS / "latency.png", results["sections"].get("latency", {}))
        results["chart"] = str(chart.relative_to(RESULTS.parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the couple-of-minutes version")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) for post-mortems")
    parser.add_argument("--broker", choices=KINDS, default=broker_kind_under_test(),
                        help="the local broker's kind (default: STREAMSCORE_TEST_BROKER, else kafka)")
    args = parser.parse_args(argv)
    plan: Plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    results: dict[str, Any] = {"plan": plan.describe(), "environment": environment(), "sections": {}}
    base = Path(tempfile.mkdtemp(prefix="streamscore-bench-", dir="/tmp"))
    broker = start_test_broker(base / "broker", kind=args.broker)
    results["environment"]["broker"] = broker.kind
    results["environment"]["broker_version"] = broker.local.version if broker.local is not None else None
    try:
        asyncio.run(run_sections(Context(broker, base, plan), tuple(args.only), results))
    finally:
        if broker.local is not None:
            broker.local.stop()
        if args.keep:
            print(f"[bench] kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print()
    print(f"broker: {results['environment']['broker']} {results['environment']['broker_version'] or ''}")
    print(render_table(results))
    print(f"\n{plan.name} run in {results['total_seconds']:.0f} s; results in {args.out}")
    return 1 if any("error" in s for s in results["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
