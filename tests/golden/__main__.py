"""Regenerate the golden outputs: ``python -m tests.golden`` (what ``make golden`` runs)."""

from __future__ import annotations

import shutil

from streams.replay.cli import run_replay
from tests.golden import EXPECTED, INPUT, SETTINGS

if __name__ == "__main__":
    shutil.rmtree(EXPECTED, ignore_errors=True)
    metrics = run_replay(SETTINGS, INPUT, EXPECTED)
    print(f"regenerated {EXPECTED}: {metrics['events']} events, {metrics['requests']} requests, "
          f"{metrics['examples']} examples, {metrics['dead_letter']} dead letters; review with git diff")
