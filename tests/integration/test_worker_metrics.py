"""A worker's ``/metrics`` against the real broker: it parses with Prometheus' own parser, every figure is the
one the stream implies, the learner's report shows up beside the worker's own, and the numbers move; and
``streamscore top`` shows the same numbers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.kafka.broker import free_port
from streams.settings import Settings, to_env
from streams.tools.simulate import simulate
from tests.fixtures import REPO, WorkerProcess, events_payload, produce

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """``/metrics`` parsed by prometheus_client's parser (which raises on anything malformed)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def wait_for(url: str, worker: WorkerProcess, condition: Callable[[Samples], bool], timeout: float = 150.0) -> Samples:
    deadline = time.monotonic() + timeout
    last: Samples = {}
    while time.monotonic() < deadline:
        assert worker.alive, worker.log_tail()
        try:
            last = scrape(url)
        except OSError:
            last = {}
        if last and condition(last):
            return last
        time.sleep(0.5)
    shown = {k: v for k, v in last.items() if k[0].endswith("_total")}
    raise AssertionError(f"/metrics never met the condition; last counters: {shown}\n{worker.log_tail()}")


async def test_metrics_parse_match_the_stream_and_move(settings_factory: Callable[..., Settings],
                                                       worker_factory: Callable[..., WorkerProcess]) -> None:
    settings = settings_factory(snapshot_every=100, snapshot_seconds=1.0, learner_web_port=free_port(),
                                click_window=300.0)
    events, _ = simulate(users=40, events=1500, seed=5)
    requests = sum(1 for e in events if e["type"] == "request")
    worker = worker_factory(settings)
    worker_factory(settings, name="learner", command="learner")
    url = f"http://{settings.web_host}:{settings.web_port}/metrics"
    await produce(settings.bootstrap, settings.topic("events"), events_payload([*events, b"{not json"]))

    def all_scored_and_reported(s: Samples) -> bool:
        # Counters move as events are processed, latencies once the batch's outputs are acknowledged.
        return (value(s, "streamscore_events_in_total") == len(events) + 1
                and value(s, "streamscore_event_to_score_seconds_count") == requests
                and value(s, "streamscore_model_logloss", model="prod", arm="*", window="recent") is not None)

    first = await asyncio.to_thread(wait_for, url, worker, all_scored_and_reported)
    assert value(first, "streamscore_requests_scored_total") == requests
    assert value(first, "streamscore_dead_letter_total", code="not_json") == 1
    assert value(first, "streamscore_event_to_score_seconds_count") == requests
    assert value(first, "streamscore_event_to_score_seconds_bucket", le="+Inf") == requests
    for stage in ("decode", "features", "score", "label_join", "update", "event"):
        count = value(first, "streamscore_stage_seconds_count", stage=stage)
        assert count is not None and count > 0, stage
    assert value(first, "streamscore_stage_seconds_count", stage="features") == requests
    lags = {dict(labels)["partition"]: v for (name, labels), v in first.items()
            if name == "streamscore_consumer_lag_messages"}
    assert set(lags) == {str(p) for p in range(settings.partitions)} and all(v >= 0 for v in lags.values())
    assert value(first, "streamscore_model_version", model="prod") is not None
    assert value(first, "streamscore_tripwire_alert", model="prod") in (0.0, 1.0)
    assert (value(first, "streamscore_examples_total", label="negative") or 0) > 0

    # The same stream's start again, later and under new ids: new requests, new labels.
    more_requests = sum(1 for e in events[:200] if e["type"] == "request")
    more = [{**e, "event_id": f"more-{i}", "ts": float(e["ts"]) + 10_000,
             **({"request_id": f"more-{e['request_id']}"} if "request_id" in e else {})}
            for i, e in enumerate(events[:200])]
    await produce(settings.bootstrap, settings.topic("events"), events_payload(more))
    total = requests + more_requests
    moved = await asyncio.to_thread(
        wait_for, url, worker, lambda s: value(s, "streamscore_event_to_score_seconds_count") == total)
    assert value(moved, "streamscore_requests_scored_total") == requests + more_requests

    # `streamscore top` draws the same numbers from the same worker.
    top = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "streams.cli", "top", "--once"], env={
        **os.environ, **to_env(settings)}, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert top.returncode == 0, top.stderr
    assert f"scored {requests + more_requests})" in top.stdout
    assert "prod@v" in top.stdout and "tripwire" in top.stdout
    assert "not_json" in top.stdout, top.stdout
