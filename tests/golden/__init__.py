"""Golden non-regression outputs: a small fixed input and the replay outputs it must give, checked in.

``make golden`` (``python -m tests.golden``) regenerates the expected files on purpose, so an intended change
shows up as a reviewable diff; ``tests/unit/test_golden.py`` fails on any unintended one.
"""

from __future__ import annotations

from pathlib import Path

from streams.settings import Settings

HERE = Path(__file__).parent
INPUT = HERE / "events.jsonl"
EXPECTED = HERE / "expected"
# Fixed here, not read from the environment: the golden run must not depend on who runs it.
SETTINGS = Settings(snapshot_every=50, metrics_window=200, click_window=600.0, allowed_lateness=30.0)
