"""Processes the benchmark starts (baselines, workers), and what it reads from them while they run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class Child:
    """``python -m MODULE ARGS`` with its output in a log file; :meth:`stop` always ends it."""

    def __init__(self, module: str, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self.started = time.time()
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO,
                                     env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
                                     stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class ChildDied(RuntimeError):
    pass


async def wait_for_file(path: Path, child: Child, timeout: float) -> dict[str, Any]:
    """The JSON a baseline writes when it is done; raises if it dies or takes longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if not child.alive:
            raise ChildDied(f"{child.log_path.name} exited {child.proc.returncode}:\n{child.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{child.log_path.name}: no result after {timeout:.0f} s:\n{child.log_tail()}")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.05)  # written with one write(), but let it land
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None  # not listening yet, or busy: the caller polls again


async def worker_counters(port: int) -> dict[str, Any] | None:
    """A worker's ``/counters/``, or ``None`` while its web server is not up."""
    return await asyncio.to_thread(_get_json, f"http://127.0.0.1:{port}/counters/")


async def worker_stages(port: int) -> dict[str, Any] | None:
    """A worker's per-stage timing histograms (from its dashboard data), or ``None`` if it has none."""
    data = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{port}/dashboard/data.json")
    stages = (data or {}).get("stages")
    return stages if isinstance(stages, dict) else None


def write_result(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, so :func:`wait_for_file` never reads half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data))
    partial.replace(path)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a live process has used so far (Linux ``/proc``); ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
