"""Fixtures shared by the suite; the factories behind them live in ``tests/fixtures.py``."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings
from tests.fixtures import BrokerUnderTest, WorkerProcess, create_test_topics, make_settings, start_test_broker


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerUnderTest]:
    # The broker runs in a session of its own (it outlives a CLI that starts it), so a SIGTERM to the test run
    # (a CI cancel) would leave it behind: turn it into an interrupt, which runs this fixture's teardown.
    signal.signal(signal.SIGTERM, _interrupt)
    test_broker = start_test_broker(tmp_path_factory.mktemp("broker"))
    yield test_broker
    if test_broker.local is not None:
        test_broker.local.stop()


@pytest.fixture
def settings_factory(broker: BrokerUnderTest, tmp_path: Path) -> Callable[..., Settings]:
    """Settings with topics created, isolated from every other test (topics, group, state dir)."""

    def factory(**overrides: Any) -> Settings:
        settings = make_settings(broker, tmp_path / "data", **overrides)
        create_test_topics(settings)
        return settings

    return factory


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def factory(settings: Settings, name: str = "worker", command: str = "worker") -> WorkerProcess:
        """A ``streamscore <command>`` process (``worker`` or ``learner``), stopped at the test's end."""
        worker = WorkerProcess(settings, tmp_path / f"{name}-{len(started)}.log", command)
        started.append(worker)
        return worker

    yield factory
    for worker in started:
        if worker.alive:
            worker.stop()
