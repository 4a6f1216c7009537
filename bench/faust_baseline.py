"""The minimal faust agent: what a faust user would write first for "decode, send one record per request".

Memory store, no tables, its own app id (consumer group) and data directory. Two shapes:
``per_event`` (``async for value in stream``) and ``take`` (``stream.take(1000, within=0.05)``).

    python -m bench.faust_baseline --bootstrap B --topic IN --out OUT --app-id A --datadir D \
        --mode per_event|take --expect N --result FILE

After N events it flushes its producer and writes ``{"first_event", "last_output", "cpu_s", "events",
"outputs"}`` (wall-clock seconds; CPU seconds of the process in between) to FILE, then idles until the
benchmark stops it (SIGTERM).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.worker import Worker

from bench.procs import write_result
from streams.worker.app import kafka_url

TAKE = 1000
WITHIN = 0.05


def build(a: argparse.Namespace) -> faust.App:
    app = faust.App(
        a.app_id,
        broker=kafka_url(a.bootstrap),
        store="memory://",
        datadir=a.datadir,
        topic_partitions=a.partitions,
        processing_guarantee="at_least_once",
        broker_session_timeout=10,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    source = app.topic(a.topic, key_serializer="raw", value_serializer="raw")
    out = app.topic(a.out, key_serializer="raw", value_serializer="raw")
    seen = {"events": 0, "outputs": 0}
    first: list[float] = []

    async def handle(value: bytes) -> None:
        if not first:
            first.extend((time.time(), time.process_time()))
        event = orjson.loads(value)
        seen["events"] += 1
        if event.get("type") == "request":
            record = orjson.dumps({"request_id": event["request_id"], "user_id": event["user_id"]})
            await out.send(key=event["user_id"].encode(), value=record)
            seen["outputs"] += 1
        if seen["events"] == a.expect:
            await app.producer.flush()
            write_result(a.result, {"first_event": first[0], "last_output": time.time(),
                                    "cpu_s": time.process_time() - first[1], **seen})

    @app.agent(source, name="baseline")
    async def baseline(stream: Any) -> None:
        if a.mode == "take":
            async for values in stream.take(TAKE, within=WITHIN):
                for value in values:
                    await handle(value)
        else:
            async for value in stream:
                await handle(value)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--bootstrap", "--topic", "--out", "--app-id", "--datadir"):
        parser.add_argument(name, required=True)
    parser.add_argument("--mode", choices=("per_event", "take"), required=True)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    a = parser.parse_args()
    worker = Worker(build(a), loglevel="WARNING", quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
