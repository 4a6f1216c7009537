"""Event time through a real worker: bad times are dead-lettered, a real gap is not, held events survive a kill."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.replay.driver import ReplayDriver
from streams.settings import Settings
from streams.tools.simulate import simulate
from tests.fixtures import (
    WorkerProcess,
    assert_examples_match_replay,
    consume,
    covers,
    events_payload,
    produce,
    request_ids_of,
    unique_by_request,
    unique_examples,
)

pytestmark = pytest.mark.integration

DAY = 86400.0
YEAR = 365 * DAY


def _counters(settings: Settings) -> dict[str, int]:
    url = f"http://{settings.web_host}:{settings.web_port}/counters/"
    with urllib.request.urlopen(url, timeout=5) as response:
        counters: dict[str, int] = json.loads(response.read())
        return counters


def _view(event_id: str, user_id: str, ts: float) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user_id, "ts": ts, "type": "view", "item_id": "x"}


def _replay(settings: Settings, events: list[dict[str, Any]]) -> ReplayDriver:
    driver = ReplayDriver(settings)
    driver.pipe_all(events)
    return driver


async def test_bad_times_are_dead_lettered_live_and_the_rest_is_the_clean_replay(
    settings_factory: Callable[..., Settings], worker_factory: Callable[[Settings], WorkerProcess]
) -> None:
    # One partition: one clock, and the live order is the replay's.
    # A short click window, so that most requests close within the stream (the replay closes them all).
    settings = settings_factory(partitions=1, batch_size=50, click_window=120.0)
    worker = worker_factory(settings)
    clean, _ = simulate(users=30, events=900, seed=21)  # event times of November 2023
    a, b, c = clean[300], clean[500], clean[700]
    planted = {
        # after the time the broker received it: refused at once by its broker timestamp
        "from-the-future": _view("from-the-future", a["user_id"], 4_000_000_000.0),
        # a year ahead of the stream but before the broker's time: held, refuted by the next event
        "a-year-ahead": _view("a-year-ahead", b["user_id"], b["ts"] + YEAR),
        # years behind: refused at once, no state keeps anything that old
        "years-behind": _view("years-behind", c["user_id"], c["ts"] - 5 * YEAR),
    }
    dirty = [*clean[:300], planted["from-the-future"], *clean[300:500], planted["a-year-ahead"], *clean[500:700],
             planted["years-behind"], *clean[700:]]
    await produce(settings.bootstrap, settings.topic("events"), events_payload(dirty))

    scores = await consume(settings.bootstrap, settings.topic("scores"), until=covers(request_ids_of(clean)),
                           timeout=90, worker=worker)
    assert covers(request_ids_of(clean))(scores), worker.log_tail()
    dead = await consume(settings.bootstrap, settings.topic("dead-letter"), expect=3, idle=2.0, timeout=30)
    by_event = {orjson.loads(d.json()["raw"])["event_id"]: d.json() for d in dead}
    assert sorted(by_event) == sorted(planted) and len(dead) == 3, [d.json() for d in dead]
    assert {d["code"] for d in by_event.values()} == {"bad_time"}
    assert "after the broker received the event" in by_event["from-the-future"]["error"]
    assert "ahead of its partition's clock" in by_event["a-year-ahead"]["error"]
    assert "did not follow it" in by_event["a-year-ahead"]["error"]
    assert "behind its partition's clock" in by_event["years-behind"]["error"]
    assert [by_event[name]["offset"] for name in planted] == [300, 501, 702]

    # Everything else is exactly what the clean stream gives: vectors, and every example that closed live.
    logs = await consume(settings.bootstrap, settings.topic("feature-log"), until=covers(request_ids_of(clean)),
                         timeout=30)
    replay = _replay(settings, clean)
    assert unique_by_request(logs) == {r["request_id"]: r for r in replay.read("feature-log")}
    replay.finish()
    live = await consume(settings.bootstrap, settings.topic("examples"), expect=1, idle=2.0, timeout=30)
    replayed = {(e["request_id"], e["item_id"]): e for e in replay.read("examples")}
    # Each live example is the clean replay's: an outlier that moved the clock would have closed requests
    # before their clicks came (negatives where the replay has positives), and closed the last ones too.
    assert_examples_match_replay(unique_examples(live), replayed)
    assert {r for r, _ in unique_examples(live)} < {r for r, _ in replayed}
    counters = await asyncio.to_thread(_counters, settings)
    assert counters["dead_letter.bad_time"] == 3 and counters.get("users_expired", 0) == 0


async def test_a_two_day_gap_live_is_accepted(
    settings_factory: Callable[..., Settings], worker_factory: Callable[[Settings], WorkerProcess]
) -> None:
    """Two days of silence, then normal traffic, produced at once (the broker's clock does not move): the jump
    waits for the events after it, then everything is scored as the replay scores it; nothing is refused."""
    settings = settings_factory(partitions=1, batch_size=50)
    worker = worker_factory(settings)
    events, _ = simulate(users=30, events=600, seed=22)
    gapped = [*events[:300], *({**e, "ts": e["ts"] + 2 * DAY} for e in events[300:])]
    await produce(settings.bootstrap, settings.topic("events"), events_payload(gapped))
    logs = await consume(settings.bootstrap, settings.topic("feature-log"), until=covers(request_ids_of(gapped)),
                         timeout=90, worker=worker)
    assert unique_by_request(logs) == {r["request_id"]: r for r in _replay(settings, gapped).read("feature-log")}
    assert await consume(settings.bootstrap, settings.topic("dead-letter"), idle=2.0, timeout=10) == []
    counters = await asyncio.to_thread(_counters, settings)
    assert counters["events_held"] == settings.clock_confirmations and "dead_letter.bad_time" not in counters


async def test_events_held_by_a_jump_survive_a_sigkill(
    settings_factory: Callable[..., Settings], worker_factory: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    """The worker is killed while a jump holds events (their offsets may well be committed): after the restart
    the saved clock still holds them, and the next events confirm the jump; every request is scored."""
    settings = settings_factory(partitions=1, batch_size=20)
    worker = worker_factory(settings)
    events, _ = simulate(users=20, events=400, seed=23)
    cut = next(i for i in range(200, 400) if events[i]["type"] == "request")  # the jump starts with a request
    before, jump = events[:cut], [{**e, "ts": e["ts"] + 2 * DAY} for e in events[cut:]]
    jump_requests = request_ids_of(jump[:2])
    await produce(settings.bootstrap, settings.topic("events"), events_payload([*before, *jump[:2]]))
    await consume(settings.bootstrap, settings.topic("scores"), until=covers(request_ids_of(before)), timeout=90,
                  worker=worker)
    await asyncio.sleep(4.0)  # past faust's commit interval: the held events' offsets are committed
    counters = await asyncio.to_thread(_counters, settings)
    assert counters["events_held"] == 2
    worker.kill()

    restarted = worker_factory(settings, name="restarted")
    await produce(settings.bootstrap, settings.topic("events"), events_payload(jump[2:]))
    logs = await consume(settings.bootstrap, settings.topic("feature-log"), until=covers(request_ids_of(events)),
                         timeout=90, worker=restarted)
    assert covers(jump_requests)(logs), restarted.log_tail()
    assert unique_by_request(logs) == {r["request_id"]: r for r in _replay(settings, before + jump)
                                       .read("feature-log")}
    assert await consume(settings.bootstrap, settings.topic("dead-letter"), idle=2.0, timeout=10) == []
