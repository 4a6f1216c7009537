"""``streamscore top``: the dashboard's numbers as a refreshing table, for servers without a browser.

It reads the worker's ``/dashboard/data.json`` (the same data the dashboard draws) and prints throughput,
latency, lag, dead letters, the models served, and the learner's verdict: prod against the baseline, the
tripwire, and the experiment's arms.

>>> print(render_top({"now": 10.0, "counters": {"events_in": 900, "requests_scored": 90, "dead_letter": 1},
...     "throughput": [[0.0, 0, 0], [10.0, 900, 90]], "event_to_score": {"count": 90, "p50": 0.005, "p95": 0.025,
...     "p99": 0.05, "max": 0.07}, "lag": {"0": 3, "1": 0}, "dead_letters": [{"code": "not_json",
...     "reason": "not JSON: unexpected character", "partition": 0, "offset": 5}], "models": {"prod": 7},
...     "worker": {"web": "http://127.0.0.1:6066", "partitions": [0, 1]}, "learner": None}))
streamscore top — worker http://127.0.0.1:6066, partitions 0,1
throughput   90.0 events/s   9.0 requests/s   (events 900, scored 90)
event→score  p50 5.0 ms   p95 25.0 ms   p99 50.0 ms   max 70.0 ms   (90 scores)
lag          3 messages   (p0 3, p1 0)
dead letter  1   latest: not_json at 0@5: not JSON: unexpected character
models       prod@v7
learner      waiting for the learner's first report (is `streamscore learner` running?)
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

RATE_SPAN = 10.0
"""Seconds of throughput samples the rates are averaged over."""


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rates(samples: list[list[float]]) -> tuple[float, float]:
    """(events/s, requests/s) over the last :data:`RATE_SPAN` seconds of cumulative samples."""
    if len(samples) < 2:
        return 0.0, 0.0
    last = samples[-1]
    first = next((s for s in samples if last[0] - s[0] <= RATE_SPAN), samples[-2])
    if first is last:
        first = samples[-2]
    span = last[0] - first[0]
    if span <= 0:
        return 0.0, 0.0
    return (last[1] - first[1]) / span, (last[2] - first[2]) / span


def _learner_lines(learner: Mapping[str, Any] | None) -> list[str]:
    if not learner:
        return ["learner      waiting for the learner's first report (is `streamscore learner` running?)"]
    report = learner["report"]
    tripwire = report.get("tripwire", {})
    lines = [f"learner      {report.get('examples', 0)} examples   tripwire "
             f"{'ALERT' if tripwire.get('alert') else 'quiet'}: {tripwire.get('reason', '')}",
             f"{'model':<12} {'recent logloss':>14} {'recent AUC':>10} {'cum. logloss':>12} {'cum. AUC':>9}"]
    for name, model in report.get("models", {}).items():
        recent, cumulative = model.get("recent", {}), model.get("cumulative", {})
        lines.append(f"{name:<12} {_num(recent.get('logloss')):>14} {_num(recent.get('auc'), 3):>10} "
                     f"{_num(cumulative.get('logloss')):>12} {_num(cumulative.get('auc'), 3):>9}")
    arms = report.get("experiment", {})
    if arms:
        lines.append(f"{'arm':<12} {'examples':>14} {'label rate':>10} {'logloss (95% CI)':>30}")
        for arm, e in arms.items():
            ci = (f"{_num(e.get('logloss'))} [{_num(e.get('logloss_low'))}, {_num(e.get('logloss_high'))}]")
            lines.append(f"{arm:<12} {e.get('n', 0):>14} {_num(e.get('label_rate'), 3):>10} {ci:>30}")
    return lines


def render_top(data: Mapping[str, Any]) -> str:
    """One screen of ``top`` from a ``/dashboard/data.json`` document."""
    counters = data.get("counters", {})
    worker = data.get("worker", {})
    events_rate, requests_rate = _rates(data.get("throughput", []))
    latency = data.get("event_to_score", {})
    lag = data.get("lag", {})
    dead = data.get("dead_letters", [])
    latest = (f"   latest: {dead[0].get('code')} at {dead[0].get('partition')}@{dead[0].get('offset')}: "
              f"{dead[0].get('reason')}" if dead else "")
    models = "  ".join(f"{name}@v{version}" for name, version in data.get("models", {}).items())
    lines = [
        f"streamscore top — worker {worker.get('web', '?')}, partitions "
        f"{','.join(str(p) for p in worker.get('partitions', [])) or 'none yet'}",
        f"throughput   {events_rate:.1f} events/s   {requests_rate:.1f} requests/s   "
        f"(events {counters.get('events_in', 0)}, scored {counters.get('requests_scored', 0)})",
        f"event→score  p50 {_ms(latency.get('p50'))}   p95 {_ms(latency.get('p95'))}   "
        f"p99 {_ms(latency.get('p99'))}   max {_ms(latency.get('max'))}   ({latency.get('count', 0)} scores)",
        f"lag          {sum(lag.values())} messages   ({', '.join(f'p{p} {n}' for p, n in lag.items())})",
        f"dead letter  {counters.get('dead_letter', 0)}{latest}",
        f"models       {models or '-'}",
        *_learner_lines(data.get("learner")),
    ]
    return "\n".join(lines)


def fetch(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def run_top(url: str, interval: float, once: bool) -> int:
    """Print :func:`render_top` every ``interval`` seconds (clearing a terminal), or once."""
    clear = sys.stdout.isatty() and not once
    while True:
        screen = render_top(fetch(url))
        print(("\x1b[H\x1b[2J" if clear else "") + screen, flush=True)
        if once:
            return 0
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return 0


__all__ = ["fetch", "render_top", "run_top"]
