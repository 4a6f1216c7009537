"""A real worker process on a real broker: events in; scores, feature log and dead letters out."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from streams.replay.driver import ReplayDriver
from streams.settings import Settings, to_env
from tests.fixtures import WorkerProcess, consume, events_payload, produce

pytestmark = pytest.mark.integration


def _event(event_id: str, user_id: str, ts: float, type_: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user_id, "ts": ts, "type": type_, **fields}


GOOD = [
    _event("e1", "u1", 100.0, "view", item_id="a"),
    _event("e2", "u1", 130.0, "view", item_id="b"),
    _event("e3", "u1", 160.0, "request", request_id="r1",
           candidates=["a", {"item_id": "b", "price": 12.5, "brand": "acme"}, "c"], context={"device": "ios"}),
    _event("e4", "u2", 170.0, "request", request_id="r2", candidates=["a", "b"]),
    _event("e5", "u1", 175.0, "click", request_id="r1", item_id="b"),
    _event("e6", "u1", 200.0, "request", request_id="r3", candidates=["x", "y", "z", "w"]),
]

BAD: list[tuple[bytes | None, bytes, str]] = [
    (None, b"this is not json", "not valid JSON"),
    (b"u9", b'{"event_id":"b2","user_id":"u9","ts":1,"type":"request","request_id":"r9"}', "candidates"),
    (b"u9", b'{"event_id":"b3","user_id":"u9","ts":1700000000000,"type":"view"}', "milliseconds"),
    (b"someone-else", b'{"event_id":"b4","user_id":"u9","ts":1,"type":"view"}', "key=user_id"),
]

AFTER = [_event("e7", "u3", 300.0, "request", request_id="r4", candidates=["a", "b"])]


def _counters(settings: Settings) -> dict[str, int]:
    url = f"http://{settings.web_host}:{settings.web_port}/counters/"
    with urllib.request.urlopen(url, timeout=5) as response:
        counters: dict[str, int] = json.loads(response.read())
        return counters


def _inspect(settings: Settings, user_id: str, items: str) -> dict[str, Any]:
    url = f"http://{settings.web_host}:{settings.web_port}/users/{user_id}/?items={items}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


@pytest.mark.parametrize("batch_size", [1, 500], ids=["per-event", "batched"])
async def test_worker_scores_logs_and_dead_letters(
    settings_factory: Callable[..., Settings], worker_factory: Callable[[Settings], WorkerProcess],
    batch_size: int,
) -> None:
    # Batch boundaries must not change any output: state is read and written once per user per batch.
    settings = settings_factory(batch_size=batch_size)
    worker = worker_factory(settings)
    bootstrap, topic = settings.bootstrap, settings.topic

    await produce(bootstrap, topic("events"), events_payload(GOOD) + [(k, v) for k, v, _ in BAD])
    scores = await consume(bootstrap, topic("scores"), expect=3, timeout=90, worker=worker)
    assert worker.alive, worker.log_tail()
    feature_log = await consume(bootstrap, topic("feature-log"), expect=3, timeout=30)
    dead = await consume(bootstrap, topic("dead-letter"), expect=len(BAD), timeout=30)

    by_request = {r.json()["request_id"]: r for r in scores}
    assert sorted(by_request) == ["r1", "r2", "r3"], worker.log_tail()
    r1 = by_request["r1"].json()
    assert by_request["r1"].key == b"u1"
    assert [s["item_id"] for s in r1["scores"]] == ["a", "b", "c"]
    assert all(0.0 <= s["score"] <= 1.0 for s in r1["scores"])
    assert (r1["arm"], r1["model"], r1["model_version"], r1["user_id"], r1["ts"]) == ("A", "prod", 0, "u1", 160.0)
    assert len(by_request["r3"].json()["scores"]) == 4

    logs = {r.json()["request_id"]: r.json() for r in feature_log}
    assert sorted(logs) == ["r1", "r2", "r3"]
    x_a, x_b, x_c = (f["x"] for f in logs["r1"]["features"])
    assert [f["item_id"] for f in logs["r1"]["features"]] == ["a", "b", "c"]
    # As of just before r1 (views of a at 100 and b at 130; r1 at 160): r1 itself is not counted.
    assert x_a["activity_events"] == 2.0 and x_a["count_view"] == 2.0 and "count_request" not in x_a
    assert x_a["activity_log_secs_since_last"] == math.log1p(30.0)
    assert x_a["decayed_3600s_all"] == pytest.approx(2 ** (-60 / 3600) + 2 ** (-30 / 3600), abs=1e-12)
    assert x_a["window_3600s"] == 2.0 and x_a["ctr_user"] == pytest.approx(0.05)
    assert (x_a["item_seen"], x_a["item_count"], x_a["item_log_secs_since"]) == (1.0, 1.0, math.log1p(60.0))
    assert (x_b["item_seen"], x_b["item_log_secs_since"]) == (1.0, math.log1p(30.0))
    assert x_c["item_seen"] == 0.0 and "item_count" not in x_c
    assert x_a["ctx_device=ios"] == x_b["ctx_device=ios"] == 1.0
    assert (x_b["cand_price"], x_b["cand_brand=acme"], x_b["cand_position"]) == (12.5, 1.0, 1.0)
    assert logs["r1"]["scores"]["prod"] == [s["score"] for s in r1["scores"]]
    assert logs["r1"]["model_versions"] == {"prod": 0, "baseline": 0}  # every model scores (shadow)
    assert len(logs["r1"]["scores"]["baseline"]) == 3
    # r3 comes after view, view, request, click: four events, the click 25 s before; one click per request.
    x_r3 = logs["r3"]["features"][0]["x"]
    assert (x_r3["activity_events"], x_r3["count_click"], x_r3["ctr_user"]) == (4.0, 1.0, pytest.approx(1.5 / 11))
    assert x_r3["activity_log_secs_since_last"] == math.log1p(25.0)

    # The live records are exactly what the plain functions give for the same events (the parity contract).
    replay = ReplayDriver(settings)
    replay.pipe_all(GOOD)
    assert {r["request_id"]: r for r in replay.read("feature-log")} == logs
    assert {r["request_id"]: r for r in replay.read("scores")} == {k: v.json() for k, v in by_request.items()}

    reasons = [r.json() for r in dead]
    assert len(reasons) == len(BAD)
    for (_, raw, why), record in zip(BAD, sorted(reasons, key=lambda d: d["offset"]), strict=True):
        assert why in record["error"], record
        assert record["raw"].encode() == raw
        assert record["topic"] == topic("events")
        assert record["offset"] >= 0

    # The worker is still alive and still processing.
    await produce(bootstrap, topic("events"), events_payload(AFTER))
    scores = await consume(bootstrap, topic("scores"), expect=4, timeout=60, worker=worker)
    assert "r4" in {r.json()["request_id"] for r in scores}
    assert worker.alive
    counters = await asyncio.to_thread(_counters, settings)
    assert counters["dead_letter"] == len(BAD)
    assert counters["requests_scored"] == 4
    assert counters["events_in"] == len(GOOD) + len(BAD) + len(AFTER)

    # The user's current features, from the worker (HTTP) and from the CLI: u1 had five events, the last at 200.
    inspected = await asyncio.to_thread(_inspect, settings, "u1", "a,zz")
    assert inspected["features"]["activity_events"] == 5.0 and inspected["as_of"] == 200.0
    assert inspected["items"]["a"]["item_seen"] == 1.0 and inspected["items"]["zz"]["item_seen"] == 0.0
    assert inspected["schema"] == logs["r1"]["schema"]
    def inspect_cli(user_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streams.cli", "inspect", "user", user_id],
                              env={**os.environ, **to_env(settings)}, capture_output=True, text=True)

    cli = await asyncio.to_thread(inspect_cli, "u1")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["features"] == inspected["features"]
    unknown = await asyncio.to_thread(inspect_cli, "nobody")
    assert unknown.returncode == 1 and "unknown user" in unknown.stderr

    # Later events of u1 move its partition's watermark past r1's attribution window (160 + 3600 + 60 s of
    # lateness): r1 closes, and the click on r1/b meets the vector logged when r1 was scored. A jump that big
    # moves the clock once the events after it confirm it (docs/event-time.md): one event alone would wait.
    later = [_event(f"e{8 + i}", "u1", 4000.0 + i, "view", item_id="c")
             for i in range(settings.clock_confirmations + 1)]
    await produce(bootstrap, topic("events"), events_payload(later))
    examples = await consume(bootstrap, topic("examples"), expect=3, timeout=30, worker=worker,
                             until=lambda records: {"r1"} <= {r.json()["request_id"] for r in records})
    r1_examples = {e["item_id"]: e for e in (r.json() for r in examples) if e["request_id"] == "r1"}
    assert {item: e["y"] for item, e in r1_examples.items()} == {"a": 0, "b": 1, "c": 0}
    assert r1_examples["b"]["x"] == x_b and r1_examples["b"]["label_ts"] == 175.0
    assert r1_examples["b"]["scores_at_serve"] == {m: s[1] for m, s in logs["r1"]["scores"].items()}
    assert all(r.key == r.json()["request_id"].encode() for r in examples)
    assert worker.stop() == 0, worker.log_tail()
