"""What every section of a run shares: the broker, a temporary directory, the plan, unique names."""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.plan import Plan
from streams.kafka.broker import free_port
from streams.settings import Settings
from tests.fixtures import BrokerUnderTest, make_settings


@dataclass
class Context:
    broker: BrokerUnderTest
    base: Path
    """A temporary directory under /tmp, removed at the end of the run."""
    plan: Plan
    started: float = field(default_factory=time.monotonic)
    _names: itertools.count[int] = field(default_factory=itertools.count)

    def remaining(self) -> float:
        """Seconds left of the plan's budget (negative once over it)."""
        return self.plan.budget_seconds - (time.monotonic() - self.started)

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def name(self, stem: str) -> str:
        """A name not used before in this run (topics, groups, directories)."""
        return f"{stem}-{next(self._names)}"

    def dir(self, stem: str) -> Path:
        path = self.base / self.name(stem)
        path.mkdir(parents=True)
        return path

    def worker_settings(self, stem: str, workers: int = 1, **overrides: Any) -> list[Settings]:
        """Settings for ``workers`` processes of one application (same group and topics, own state and port).

        The worker's own defaults for batching; only the log level is lowered, so logging costs nothing.
        """
        defaults = Settings()
        values: dict[str, Any] = dict(partitions=4, batch_size=defaults.batch_size, log_level="warning")
        values.update(overrides)
        first = make_settings(self.broker, self.dir(stem) / "w0", **values)
        others = [dataclasses.replace(first, data_dir=first.data_dir.parent / f"w{i}", web_port=free_port())
                  for i in range(1, workers)]
        return [first, *others]


def settings_used(settings: Settings) -> dict[str, Any]:
    """The settings a benchmark's worker ran with, minus what is per-run noise (ports, names, paths)."""
    noise = {"bootstrap", "app_id", "topic_prefix", "topic_overrides", "data_dir", "web_port", "learner_web_port",
             "snapshot_key", "web_host"}
    return {k: v for k, v in dataclasses.asdict(settings).items() if k not in noise}
