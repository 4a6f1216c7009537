"""``learn_from=fnw`` live: a worker sends the replay's early records and window-closed examples, and a learner
takes every early record once, keeping the metrics on the window-closed ones."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from streams.kafka.broker import free_port
from streams.settings import Settings
from streams.tools.simulate import simulate
from tests.fixtures import (
    WorkerProcess,
    assert_examples_match_replay,
    consume,
    covers,
    early_candidates,
    events_payload,
    finished_replay,
    produce,
    request_ids_of,
)

pytestmark = pytest.mark.integration

MODEL_FREE = ("request_id", "item_id", "user_id", "ts", "label_ts", "x", "y", "arm", "learned")
"""What a window-closed example holds besides the scores: live, the learner's snapshots reach the worker as they
come, so the scores differ from the replay's by design; early records hold no scores and must be equal as they are."""


def _learner_report(settings: Settings) -> dict[str, Any] | None:
    try:
        url = f"http://{settings.web_host}:{settings.learner_web_port}/metrics.json"
        with urllib.request.urlopen(url, timeout=5) as response:
            report: dict[str, Any] = orjson.loads(response.read())
            return report
    except OSError:
        return None


def _wait_for_report(settings: Settings, done: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    deadline, report = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        report = _learner_report(settings)
        if report is not None and done(report):
            return report
        time.sleep(0.5)
    raise AssertionError(f"the learner did not get there in {timeout} s; last report: {report}")


async def test_a_live_worker_sends_the_replays_early_records_and_the_learner_learns_each_once(
    settings_factory: Callable[..., Settings], worker_factory: Callable[..., WorkerProcess]
) -> None:
    settings = settings_factory(partitions=2, batch_size=50, learn_from="fnw", learner_web_port=free_port(),
                                snapshot_every=100, click_window=600.0)
    worker = worker_factory(settings)
    learner = worker_factory(settings, name="learner", command="learner")
    events, _ = simulate(users=40, events=1500, seed=31, click_delay=(1.0, 8.0, 30.0))
    await produce(settings.bootstrap, settings.topic("events"), events_payload(events))
    await consume(settings.bootstrap, settings.topic("scores"), until=covers(request_ids_of(events)), timeout=120,
                  worker=worker)

    replayed = finished_replay(settings, events).read("examples")
    live_records = [r.json() for r in await consume(settings.bootstrap, settings.topic("examples"), expect=1,
                                                    idle=3.0, timeout=60)]
    live_early = {(e["request_id"], e["item_id"], e["kind"]): e for e in early_candidates(live_records)}
    replay_early = {(e["request_id"], e["item_id"], e["kind"]): e for e in early_candidates(replayed)}
    # Every request was scored and every click came live, so every early record is out, exactly the replay's.
    assert live_early == replay_early and len(live_early) > 500, (len(live_early), len(replay_early))
    live_closed = {(e["request_id"], e["item_id"]): e for e in live_records if "kind" not in e}
    assert all(e["learned"] == "fnw" for e in live_closed.values())
    assert_examples_match_replay(live_closed, {(e["request_id"], e["item_id"]): e for e in replayed
                                               if "kind" not in e}, fields=MODEL_FREE)

    report = await asyncio.to_thread(
        _wait_for_report, settings,
        lambda r: r.get("fake_negatives", 0) + r.get("early_positives", 0) >= len(live_early)
        and r["examples"] >= len(live_closed), 60.0)
    assert learner.alive, learner.log_tail()
    positives = sum(1 for kind in (k for _, _, k in live_early) if kind == "positive")
    assert (report["fake_negatives"], report["early_positives"]) == (len(live_early) - positives, positives)
    assert report["examples"] == report["models"]["prod"]["cumulative"]["n"] == len(live_closed)
    assert report["duplicates"] == 0 and report["rejected"] == 0


async def test_under_the_default_a_sigkilled_worker_restarts_and_every_early_record_goes_out_once(
    settings_factory: Callable[..., Settings], worker_factory: Callable[..., WorkerProcess]
) -> None:
    # The default (auto) on clicks is fnw: nothing lost must hold for its early records too. Copies a crash
    # redelivers must be identical (early records hold no scores), and the learner must learn each one once.
    settings = settings_factory(partitions=2, batch_size=50, learn_from="auto", learner_web_port=free_port(),
                                snapshot_every=100, click_window=600.0)
    events, _ = simulate(users=40, events=1600, seed=32, click_delay=(1.0, 8.0, 30.0))
    first, second = events[:800], events[800:]
    learner = worker_factory(settings, name="learner", command="learner")
    worker = worker_factory(settings, name="worker-1")
    await produce(settings.bootstrap, settings.topic("events"), events_payload(first))
    await consume(settings.bootstrap, settings.topic("scores"), until=covers(request_ids_of(first)), timeout=120,
                  worker=worker)
    await produce(settings.bootstrap, settings.topic("events"), events_payload(second))
    await asyncio.sleep(0.3)  # into the second half, then pull the plug
    worker.kill()
    restarted = worker_factory(settings, name="worker-2")
    await consume(settings.bootstrap, settings.topic("scores"), until=covers(request_ids_of(events)), timeout=120,
                  worker=restarted)

    replayed = finished_replay(settings, events).read("examples")
    replay_early = {(e["request_id"], e["item_id"], e["kind"]): e for e in early_candidates(replayed)}
    live_early: dict[tuple[str, str, str], Any] = {}
    early_records = sum("kind" in e for e in replayed)
    for record in await consume(settings.bootstrap, settings.topic("examples"), expect=early_records, idle=3.0,
                                timeout=60):
        for e in early_candidates([record.json()]):
            key = (e["request_id"], e["item_id"], e["kind"])
            assert live_early.setdefault(key, e) == e, f"two different early records for {key}"
    assert live_early == replay_early and len(live_early) > 500, (len(live_early), len(replay_early))

    report = await asyncio.to_thread(
        _wait_for_report, settings,
        lambda r: r.get("fake_negatives", 0) + r.get("early_positives", 0) >= len(live_early), 60.0)
    positives = sum(1 for _, _, kind in live_early if kind == "positive")
    assert (report["fake_negatives"], report["early_positives"]) == (len(live_early) - positives, positives)
    assert report["rejected"] == 0 and learner.alive, learner.log_tail()
