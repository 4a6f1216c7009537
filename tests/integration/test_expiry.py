"""Inactive users are forgotten by event time, on disk too, without changing any output."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from streams.replay.driver import ReplayDriver
from streams.settings import Settings
from tests.fixtures import WorkerProcess, consume, covers, events_payload, produce, unique_by_request

pytestmark = pytest.mark.integration


def _get(settings: Settings, path: str) -> tuple[int, dict[str, Any]]:
    url = f"http://{settings.web_host}:{settings.web_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _settled(settings: Settings, path: str, done: Callable[[int, dict[str, Any]], bool],
             timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """``GET path`` until ``done(status, body)``: a batch's states are written after its scores are out (so
    that a crash never leaves a state ahead of its outputs), so a score can be read before its state."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = _get(settings, path)
        if done(status, body) or time.monotonic() > deadline:
            return status, body
        time.sleep(0.2)


def _view(i: int, user_id: str, ts: float) -> dict[str, Any]:
    return {"event_id": f"v{i}", "user_id": user_id, "ts": ts, "type": "view", "item_id": f"i{i % 3}"}


async def test_idle_users_are_swept_from_the_store_and_come_back_fresh(
    settings_factory: Callable[..., Settings], worker_factory: Callable[[Settings], WorkerProcess]
) -> None:
    settings = settings_factory(partitions=1, user_ttl=100.0, expiry_sweep_every=50.0, allowed_lateness=10.0,
                                click_window=30.0, conversion_window=30.0, batch_size=5)
    worker = worker_factory(settings)
    idle = [_view(0, "idle", 1000.0), _view(1, "idle", 1001.0)]
    busy = [_view(i, "busy", 1000.0 + 10 * i) for i in range(2, 30)]  # event time moves on to 1290
    probe = {"event_id": "p1", "user_id": "busy", "ts": 1295.0, "type": "request", "request_id": "probe",
             "candidates": ["i1"]}
    await produce(settings.bootstrap, settings.topic("events"), events_payload([*idle, *busy, probe]))
    await consume(settings.bootstrap, settings.topic("scores"), until=covers({"probe"}), timeout=90, worker=worker)

    status, body = await asyncio.to_thread(_settled, settings, "/users/busy/",
                                           lambda s, b: s == 200 and b["features"]["activity_events"] == 29.0)
    assert status == 200 and body["features"]["activity_events"] == 29.0  # 28 views and the probe request
    status, body = await asyncio.to_thread(_settled, settings, "/users/idle/", lambda s, b: s == 404)
    assert status == 404, body  # idle since 1001, the partition is at 1295: swept after the probe's batch
    counters = (await asyncio.to_thread(_get, settings, "/counters/"))[1]
    assert counters["users_swept"] == 1

    back = {"event_id": "b1", "user_id": "idle", "ts": 1300.0, "type": "request", "request_id": "back",
            "candidates": ["i0", "i1"]}
    await produce(settings.bootstrap, settings.topic("events"), events_payload([back]))
    logs = await consume(settings.bootstrap, settings.topic("feature-log"), until=covers({"probe", "back"}),
                         timeout=60, worker=worker)
    replay = ReplayDriver(settings)
    replay.pipe_all([*idle, *busy, probe, back])
    assert unique_by_request(logs) == {r["request_id"]: r for r in replay.read("feature-log")}
    assert unique_by_request(logs)["back"]["features"][0]["x"]["activity_events"] == 0.0
