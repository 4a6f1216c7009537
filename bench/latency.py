"""Section 2, latency: events produced at a fixed rate, each request's output read back, per rate.

Latency = wall-clock time the output is read back by this process minus the wall-clock time its request was
handed to the producer. Targets: the worker (its ``scores`` topic) and, as the baseline, the bare aiokafka loop
echoing each request to a topic (``bench/bare_loop.py``), both separate processes on the same broker.
A rate whose outputs are not all back ``latency_drain_seconds`` after its last send is past the target's
capacity: it is reported with its missing outputs, and the higher rates are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.context import Context, settings_used
from bench.kafka import create_plain_topics
from bench.mix import make_mix
from bench.procs import Child
from bench.report import figure, percentiles
from streams.kafka.admin import partitions_of
from tests.fixtures import WorkerProcess, create_test_topics

Record = tuple[bytes | None, bytes, str | None]
"""(key, value, request_id or None) of one event to send."""

KEPT_UP_DRAIN_S = 1.0
"""A target kept up with a rate if its last output came back within this long after the last send."""


@dataclass
class Reader:
    """Reads a target's output topic and stamps each request id with the time it was first seen."""

    bootstrap: str
    topic: str
    received: dict[str, float] = field(default_factory=dict)

    async def run(self, ready: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=20)
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in sorted(await partitions_of(consumer, self.topic))]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ready.set()
            while True:
                batch = await consumer.getmany(timeout_ms=20)
                seen = time.time()  # one stamp per fetch: that is when these records became visible here
                for messages in batch.values():
                    for m in messages:
                        self.received.setdefault(orjson.loads(m.value or b"{}")["request_id"], seen)
        finally:
            await consumer.stop()

    async def wait_for(self, request_ids: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(r in self.received for r in request_ids):
                return True
            await asyncio.sleep(0.02)
        return False


async def send_at_rate(producer: AIOKafkaProducer, topic: str, records: list[Record], rate: float,
                       sent: dict[str, float]) -> float:
    """Send ``records`` at ``rate`` per second; stamp each request's send time; return the send duration."""
    started = time.perf_counter()
    for i, (key, value, request_id) in enumerate(records):
        delay = started + i / rate - time.perf_counter()
        if delay > 0.002:  # below a couple of ms asyncio cannot sleep precisely: send a small burst instead
            await asyncio.sleep(delay)
        if request_id is not None:
            sent[request_id] = time.time()
        await producer.send(topic, key=key, value=value)
    return time.perf_counter() - started


def probe(n: int) -> Record:
    request_id, user_id = f"latency-probe-{n}", f"probe-{n}"
    event = {"event_id": request_id, "user_id": user_id, "ts": 1_600_000_000.0 + n, "type": "request",
             "request_id": request_id, "candidates": ["a", "b"]}
    return (user_id.encode(), orjson.dumps(event), request_id)


async def measure(ctx: Context, in_topic: str, out_topic: str, segments: list[tuple[int, list[Record]]],
                  samples: dict[str, list[float]], is_alive: Any) -> dict[str, Any]:
    """Warm up with the first segment, then one measured run per remaining (rate, records) segment."""
    reader = Reader(ctx.bootstrap, out_topic)
    listening = asyncio.Event()
    reading = asyncio.create_task(reader.run(listening))
    producer = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap, linger_ms=0)
    await producer.start()
    per_rate: dict[str, Any] = {}
    try:
        await asyncio.wait_for(listening.wait(), 30)
        ready_probe = probe(0)
        await send_at_rate(producer, in_topic, [ready_probe], 1, {})
        if not await reader.wait_for([str(ready_probe[2])], 180):
            raise TimeoutError(f"no output for a probe request on {out_topic} after 180 s")
        drain = ctx.plan.latency_drain_seconds
        (warm_rate, warm_records), *measured = segments
        await send_at_rate(producer, in_topic, warm_records, warm_rate, {})
        await reader.wait_for([r for _, _, r in warm_records if r], drain)
        for rate, records in measured:
            if not is_alive():
                raise RuntimeError("the target process died")
            sent: dict[str, float] = {}
            seconds = await send_at_rate(producer, in_topic, records, rate, sent)
            last_send = max(sent.values())
            await reader.wait_for(list(sent), drain)
            got = [reader.received[r] - t for r, t in sent.items() if r in reader.received]
            samples[str(rate)] = got
            last_out = max((reader.received[r] for r in sent if r in reader.received), default=last_send)
            missing = len(sent) - len(got)
            per_rate[str(rate)] = {
                "target_rate": rate, "achieved_rate": len(records) / seconds, "events": len(records),
                "requests": len(sent), "missing": missing, "drain_s": last_out - last_send,
                "kept_up": missing == 0 and last_out - last_send <= KEPT_UP_DRAIN_S,
                "latency_s": percentiles(got),
            }
            if missing:
                break  # past capacity: a higher rate would only pile onto this backlog
    finally:
        await producer.stop()
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
    return per_rate


def plan_segments(ctx: Context) -> list[tuple[int, list[Record]]]:
    """The warm-up then one slice of the reference mix per rate, each ``latency_seconds`` long."""
    plan = ctx.plan
    warm = int(min(plan.latency_rates) * plan.latency_warmup_seconds)
    sizes = [warm] + [int(r * plan.latency_seconds) for r in plan.latency_rates]
    mix = make_mix(users=5_000, events=sum(sizes), seed=23)
    records: list[Record] = [(k, v, str(e["request_id"]) if e["type"] == "request" else None)
                             for (k, v), e in zip(mix.payload, mix.events, strict=True)]
    segments, start = [], 0
    for rate, size in zip((min(plan.latency_rates), *plan.latency_rates), sizes, strict=True):
        segments.append((rate, records[start:start + size]))
        start += size
    return segments


async def against_worker(ctx: Context, segments: list[tuple[int, list[Record]]],
                         samples: dict[str, list[float]]) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = ctx.worker_settings("latency-worker")[0]
    create_test_topics(settings)
    worker = WorkerProcess(settings, settings.data_dir.parent / "worker.log")
    try:
        return await measure(ctx, settings.topic("events"), settings.topic("scores"), segments, samples,
                             lambda: worker.alive), settings_used(settings)
    finally:
        worker.stop()


async def against_bare(ctx: Context, segments: list[tuple[int, list[Record]]],
                       samples: dict[str, list[float]]) -> dict[str, Any]:
    in_topic, out_topic = ctx.name("bench.lat-in"), ctx.name("bench.lat-out")
    await create_plain_topics(ctx.bootstrap, [in_topic, out_topic], 4)
    workdir = ctx.dir("latency-bare")
    child = Child("bench.bare_loop", ["--bootstrap", ctx.bootstrap, "--topic", in_topic, "--out", out_topic,
                                      "--group", ctx.name("bench-lat-bare")], workdir / "log")
    try:
        return await measure(ctx, in_topic, out_topic, segments, samples, lambda: child.alive)
    finally:
        child.stop()


async def run(ctx: Context, chart_samples: dict[str, Any]) -> dict[str, Any]:
    segments = plan_segments(ctx)
    worker_samples: dict[str, list[float]] = {}
    bare_samples: dict[str, list[float]] = {}
    worker, used = await against_worker(ctx, segments, worker_samples)
    bare = await against_bare(ctx, segments, bare_samples)
    chart_samples.update({"worker": worker_samples, "bare_aiokafka": bare_samples})
    figures: dict[str, Any] = {}
    for rate, w in worker.items():
        b = bare.get(rate, {}).get("latency_s", {})
        for q in ("p50", "p95", "p99"):  # the max is in the section's data
            figures[f"{rate}/s worker {q}"] = figure(_ms(w["latency_s"][q]), "ms", {"bare_aiokafka": _ms(b.get(q))})
        figures[f"{rate}/s worker achieved"] = figure(w["achieved_rate"], "events/s",
                                                     note="kept up" if w["kept_up"] else "fell behind")
    skipped = {f"{r}/s": "skipped: the worker fell behind at a lower rate"
               for r in ctx.plan.latency_rates if str(r) not in worker}
    return {"figures": figures, "skipped": skipped, "worker": worker, "bare_aiokafka": bare,
            "worker_settings": used,
            "definition": "event->output latency: wall clock when this process reads the output back minus when "
                          "it handed the request to its producer (linger 0); same machine, same clock"}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
