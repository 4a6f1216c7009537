"""The item-side parity check: were the logged ``xitem_`` features exactly what the visibility rule allowed?

For every logged request it recomputes, by brute force and from the events alone, each candidate's item-side
features: every impression of an *earlier* request and every label (the first one per candidate, within its
attribution window) whose ``ts + lag`` is at most the request's time (the newest request time so far, as the
table uses), decayed by its half-life, summed per key; then :class:`~features.itemside.ItemSignals` on those
sums. It shares no code with the item table but the feature formulas, so a table that counts a delta early
(its own request's impression, a label before its lag, a future event) or late is reported.

It costs O(requests * deltas): for tests and audits of small replays, not for the hot path.

>>> from streams.replay.driver import ReplayDriver
>>> from streams.settings import Settings
>>> events = [{"event_id": "e1", "user_id": "u", "ts": 1, "type": "request", "request_id": "r1",
...            "candidates": ["a"]},
...           {"event_id": "e2", "user_id": "v", "ts": 100, "type": "request", "request_id": "r2",
...            "candidates": ["a"]}]
>>> driver = ReplayDriver(Settings()); driver.pipe_all(events)
>>> item_mismatches(events, driver.read("feature-log"), Settings())
[]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from features.base import Vector
from features.itemside import ItemSignals, is_item_side
from features.itemstats import ALL
from features.parity import Mismatch
from streams.core.labels import LabelRule
from streams.events import InvalidEvent, Request, decode_event
from streams.settings import Settings

__all__ = ["item_mismatches", "item_point_in_time"]


class _Sums:
    """Brute-force lookups: every delta kept as (visible_at, key, impressions, labels)."""

    def __init__(self, deltas: list[tuple[float, str, float, float]], at: float, half_life: float) -> None:
        self.sums: dict[str, list[float]] = {}
        for visible_at, key, impressions, labels in deltas:
            if visible_at <= at:
                weight = 0.5 ** ((at - visible_at) / half_life)
                entry = self.sums.setdefault(key, [0.0, 0.0])
                entry[0] += impressions * weight
                entry[1] += labels * weight

    def lookup(self, key: str, ts: float) -> tuple[float, float]:
        impressions, labels = self.sums.get(key, (0.0, 0.0))
        return impressions, labels


def _keys(request: Request) -> list[list[str]]:
    ctx = [f"ctx_{k}={v}" for k, v in request.context.items() if isinstance(v, str)]
    return [[f"item={c.item_id}", *ctx, *(f"cand_{k}={v}" for k, v in c.attrs.items() if isinstance(v, str))]
            for c in request.candidates]


def item_point_in_time(events: Iterable[dict[str, Any] | bytes], settings: Settings) -> dict[str, list[Vector]]:
    """request_id -> the item-side features of its candidates, recomputed from the events by brute force."""
    rule = LabelRule.of(settings)
    signals = ItemSignals(settings.item_prior_weight)
    lag, half_life = settings.item_lag, settings.item_half_life
    deltas: list[tuple[float, str, float, float]] = []
    requests: dict[str, tuple[str, float, list[str], list[list[str]]]] = {}
    labelled: set[tuple[str, str]] = set()
    now = -math.inf
    out: dict[str, list[Vector]] = {}
    for raw in events:
        try:
            event = decode_event(raw if isinstance(raw, bytes) else orjson.dumps(raw))
        except InvalidEvent:
            continue
        if isinstance(event, Request):
            now = max(now, event.ts)
            sums = _Sums(deltas, now, half_life)
            keys = _keys(event)
            out[event.request_id] = [signals.values(sums, k, now) for k in keys]  # type: ignore[arg-type]
            requests[event.request_id] = (event.user_id, event.ts, [c.item_id for c in event.candidates], keys)
            deltas.extend((event.ts + lag, key, 1.0, 0.0) for k in keys for key in (*k, ALL))
        elif rule.matches(event):
            request_id = getattr(event, "request_id", None)
            known = requests.get(request_id) if request_id else None
            if known is None or known[0] != event.user_id or event.ts > known[1] + rule.window:
                continue
            item_id = getattr(event, "item_id", None)
            if item_id is None and len(known[2]) == 1:
                item_id = known[2][0]
            if item_id not in known[2] or (request_id, item_id) in labelled:
                continue
            labelled.add((str(request_id), str(item_id)))
            labelled_keys = known[3][known[2].index(item_id)]
            deltas.extend((event.ts + lag, key, 0.0, 1.0) for key in (*labelled_keys, ALL))
    return out


def _close(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-12) for k in a)


def item_mismatches(events: Sequence[dict[str, Any] | bytes], feature_log: Iterable[dict[str, Any]],
                    settings: Settings) -> list[Mismatch]:
    """Every (request, candidate) whose logged item-side features differ from the recomputed ones."""
    expected = item_point_in_time(events, settings)
    mismatches = []
    for record in feature_log:
        rebuilt = expected.get(record["request_id"], [])
        for i, logged in enumerate(record["features"]):
            x = {k: v for k, v in logged["x"].items() if is_item_side(k)}
            again = rebuilt[i] if i < len(rebuilt) else {}
            if not _close(x, again):
                mismatches.append(Mismatch(record["request_id"], logged["item_id"], x, again))
    return mismatches
