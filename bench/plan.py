"""How big each part of the benchmark is: the full run (``make bench``) and the quick one (``make bench-quick``).

Sizes are chosen for this 2-core machine: the full run stays well under 30 minutes, the quick one near two.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Plan:
    name: str
    live_events: int
    """Events pre-filled in the shared ``events`` topic that every live consumer reads (sections 1 and 5)."""
    live_users: int
    latency_rates: tuple[int, ...]
    """Produce rates (events/s) of the latency runs, each against the worker and the bare loop."""
    latency_seconds: float
    latency_warmup_seconds: float
    latency_drain_seconds: float
    """How long to wait, after the last send of a rate, for the outputs still due."""
    replay_events: int
    replay_users: int
    state_users: tuple[int, ...]
    """Users of the state-size runs, smallest first. The first always runs; a larger one runs only if its
    estimate (from the rate measured on the one before) fits in what is left of ``budget_seconds``."""
    restart_from_changelog: bool
    """Besides the restarts after a clean stop and after SIGKILL, time one with the data directory lost."""
    worst_case_state: bool
    """Also replay one user to every bound of its state (~10 s)."""
    scaling: bool
    budget_seconds: float
    """What the whole run should take (installation aside): the state section fits its sizes into the rest."""

    def describe(self) -> dict[str, Any]:
        out = asdict(self)
        out["latency_rates"] = list(self.latency_rates)
        out["state_users"] = list(self.state_users)
        return out


FULL = Plan(
    name="full",
    live_events=20_000,
    live_users=2_000,
    latency_rates=(200, 500, 1_000, 2_000),
    latency_seconds=15.0,
    latency_warmup_seconds=3.0,
    latency_drain_seconds=45.0,
    replay_events=30_000,
    replay_users=3_000,
    state_users=(10_000, 100_000, 1_000_000),
    restart_from_changelog=True,
    worst_case_state=True,
    scaling=True,
    budget_seconds=20 * 60,
)

QUICK = Plan(
    name="quick",
    live_events=5_000,
    live_users=600,
    latency_rates=(200,),
    latency_seconds=6.0,
    latency_warmup_seconds=1.0,
    latency_drain_seconds=15.0,
    replay_events=5_000,
    replay_users=600,
    state_users=(10_000,),
    restart_from_changelog=False,
    worst_case_state=False,
    scaling=True,
    budget_seconds=3 * 60,
)
