"""The bare aiokafka loop: consume events, decode each with orjson, produce one record per request.

No features, no models, no state: the limit of Python + aiokafka on this broker, the yardstick of the
worker's throughput and latency. Run as its own process (as the worker is):

    python -m bench.bare_loop --bootstrap B --topic IN --out OUT --group G [--expect N --result FILE]

With ``--expect`` it stops after N events and writes ``{"first_event", "last_output", "cpu_s", "events",
"outputs"}`` (wall-clock seconds; CPU seconds of the process in between) to FILE; without it it echoes until
SIGTERM (the latency runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.procs import write_result


async def run(bootstrap: str, topic: str, out: str, group: str, expect: int, result: Path | None,
              fetch_max_wait_ms: int = 500) -> None:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8_000_000, fetch_max_wait_ms=fetch_max_wait_ms)
    # The same producer settings as the worker's (streams/worker/app.py): a fair comparison of the rest.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=1_000_000,
                                max_request_size=4_000_000)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await consumer.start()
    await producer.start()
    events = outputs = 0
    first_event: float | None = None
    first_cpu = 0.0
    try:
        while not stop.is_set() and not (expect and events >= expect):
            batch = await consumer.getmany(timeout_ms=100)
            if batch and first_event is None:
                first_event, first_cpu = time.time(), time.process_time()
            futures = []
            for messages in batch.values():
                for message in messages:
                    events += 1
                    event = orjson.loads(message.value or b"{}")
                    if event.get("type") == "request":
                        record = orjson.dumps({"request_id": event["request_id"], "user_id": event["user_id"]})
                        futures.append(await producer.send(out, key=message.key, value=record))
            # Outputs acknowledged before the next batch, as the worker does before it commits.
            await asyncio.gather(*futures)
            outputs += len(futures)
        last_output, cpu_s = time.time(), time.process_time() - first_cpu
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        with contextlib.suppress(Exception):
            await consumer.stop()
    if result is not None:
        write_result(result, {"first_event": first_event, "last_output": last_output, "cpu_s": cpu_s,
                              "events": events, "outputs": outputs})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--result", type=Path)
    parser.add_argument("--fetch-max-wait-ms", type=int, default=500)
    a = parser.parse_args()
    asyncio.run(run(a.bootstrap, a.topic, a.out, a.group, a.expect, a.result, a.fetch_max_wait_ms))


if __name__ == "__main__":
    main()
