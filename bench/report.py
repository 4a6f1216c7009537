"""Assembling the results: figures with their ratios to same-run baselines, the JSON, the table on stdout.

A figure is ``{"value": v, "unit": u}``, plus ``"ratio": {baseline: v / baseline_value}`` when it has
baselines: the machine is small and shared, so a figure alone says little, its ratio to a baseline measured
minutes apart in the same run says more.

>>> figure(700.0, "events/s", {"bare_aiokafka": 350_000.0, "faust_per_event": 0.0})
{'value': 700.0, 'unit': 'events/s', 'ratio': {'bare_aiokafka': 0.002, 'faust_per_event': None}}
>>> percentiles([0.004, 0.001, 0.002, 0.003])
{'n': 4, 'mean': 0.0025, 'p50': 0.002, 'p95': 0.004, 'p99': 0.004, 'max': 0.004}
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PACKAGES = ("faust-streaming", "aiokafka", "river", "rocksdict", "noida-db", "orjson", "mode-streaming")


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline``, rounded to 4 significant digits; ``None`` when either is missing or zero.

    >>> ratio(1.0, 3.0), ratio(5.0, 0.0), ratio(None, 2.0)
    (0.3333, None, None)
    """
    if value is None or not baseline:
        return None
    return float(f"{value / baseline:.4g}")


def figure(value: float | None, unit: str, baselines: dict[str, float | None] | None = None,
           note: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"value": value, "unit": unit}
    if baselines:
        out["ratio"] = {name: ratio(value, base) for name, base in baselines.items()}
    if note:
        out["note"] = note
    return out


def percentiles(samples: Sequence[float]) -> dict[str, Any]:
    """Nearest-rank percentiles of raw samples (exact, no buckets)."""
    if not samples:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {"n": len(ordered), "mean": sum(ordered) / len(ordered), "p50": rank(0.50), "p95": rank(0.95),
            "p99": rank(0.99), "max": ordered[-1]}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{'+dirty' if dirty else ''}" if head else None


def environment() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "packages": {p: _version(p) for p in PACKAGES},
        "cores": os.cpu_count(),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": _git_commit(),
    }


def _format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _format_ratios(ratios: dict[str, float | None]) -> str:
    return ", ".join(f"{_format_value(r)}x {name}" for name, r in ratios.items())


def render_table(results: dict[str, Any]) -> str:
    """The figures of every section, one line each, with their ratios; errors and skips named.

    >>> print(render_table({"sections": {"replay": {"figures": {"events/s": figure(2000.0, "events/s",
    ...     {"orjson_loads": 200000.0})}}, "state": {"error": "boom"}}}))
    section  figure    value  unit      ratio
    -------  --------  -----  --------  ------------------
    replay   events/s  2,000  events/s  0.01x orjson_loads
    state    ERROR     -                boom
    """
    rows: list[tuple[str, str, str, str, str]] = [("section", "figure", "value", "unit", "ratio")]
    for section, data in results.get("sections", {}).items():
        if "error" in data:
            rows.append((section, "ERROR", "-", "", str(data["error"]).splitlines()[0][:120]))
            continue
        for name, fig in data.get("figures", {}).items():
            rows.append((section, name, _format_value(fig.get("value")), fig.get("unit", ""),
                         _format_ratios(fig.get("ratio", {}))))
        for name, reason in data.get("skipped", {}).items():
            rows.append((section, name, "skipped", "", reason))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
