"""The worker's garbage-collector settings and the timing of every collection."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from streams.core.timings import StageTimings
from streams.worker.gcwatch import THRESHOLDS, GcWatch, tune_collector


@pytest.fixture
def restored_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_tune_collector_sets_the_worker_thresholds(restored_thresholds: None) -> None:
    tune_collector()
    assert gc.get_threshold() == THRESHOLDS


def test_every_collection_is_timed_and_a_slow_one_logged(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    timings = StageTimings()
    watch = GcWatch(timings)
    watch.install()
    watch.install()  # twice: still one callback
    try:
        monkeypatch.setattr("streams.worker.gcwatch.SLOW_S", 0.0)
        with caplog.at_level(logging.INFO, logger="streams.worker.gcwatch"):
            gc.collect(1)
            gc.collect(2)
    finally:
        watch.uninstall()
    stages = timings.snapshot()
    assert stages["gc_gen1"]["count"] >= 1 and stages["gc_gen2"]["count"] >= 1
    assert any("garbage collection of generation 2" in r.message for r in caplog.records)
    count = stages["gc_gen2"]["count"]
    gc.collect(2)
    assert timings.snapshot()["gc_gen2"]["count"] == count  # uninstalled
