"""The reference mix: the simulator's stream (views and carts, requests of 3-10 candidates, clicks)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from streams.tools.simulate import simulate


@dataclass
class Mix:
    events: list[dict[str, Any]]
    payload: list[tuple[bytes | None, bytes]]
    """(key, value) as producers write them: keyed by user_id, orjson-encoded."""

    @property
    def request_ids(self) -> list[str]:
        return [str(e["request_id"]) for e in self.events if e["type"] == "request"]

    def describe(self) -> dict[str, Any]:
        return describe_mix(self.events)


def make_mix(users: int, events: int, seed: int) -> Mix:
    stream, _ = simulate(users=users, events=events, seed=seed)
    return Mix(stream, [(str(e["user_id"]).encode(), orjson.dumps(e)) for e in stream])


def describe_mix(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, shares by type, candidates per request and encoded size: what "the reference mix" was.

    >>> describe_mix([{"type": "view"}, {"type": "request", "candidates": ["a", "b"]}])["share"]
    {'request': 0.5, 'view': 0.5}
    """
    counts = Counter(str(e["type"]) for e in events)
    total = len(events) or 1
    candidates = [len(e["candidates"]) for e in events if e["type"] == "request"]
    return {
        "events": len(events),
        "users": len({e.get("user_id") for e in events}),
        "counts": dict(sorted(counts.items())),
        "share": {t: round(n / total, 4) for t, n in sorted(counts.items())},
        "candidates_per_request": round(sum(candidates) / len(candidates), 2) if candidates else 0,
        "mean_event_bytes": round(sum(len(orjson.dumps(e)) for e in events) / total, 1),
    }
