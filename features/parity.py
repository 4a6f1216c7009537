"""The point-in-time parity check: were logged vectors computed from the state *just before* each request?

For every request, the check rebuilds the user's state from scratch out of that user's earlier events only
(``update`` and nothing else), evaluates the features on a copy of it, and compares with the vector that was
logged. A feature that peeks at the triggering event's own effect, or that changes state while computing a
value, or a pipeline that updates before it scores, gives a different vector and is reported.

It costs O(events per user²): for tests and audits of a replay, not for the hot path.

>>> from features.featureset import FeatureSet
>>> from streams.replay.driver import ReplayDriver
>>> from streams.settings import Settings
>>> events = [{"event_id": "e1", "user_id": "u", "ts": 1, "type": "view", "item_id": "a"},
...           {"event_id": "e2", "user_id": "u", "ts": 2, "type": "request", "request_id": "r",
...            "candidates": ["a"]}]
>>> driver = ReplayDriver(Settings()); driver.pipe_all(events)
>>> point_in_time_mismatches(events, driver.read("feature-log"), FeatureSet.default())
[]
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from features.base import Vector
from features.featureset import FeatureSet
from features.itemside import is_item_side
from features.itemvectors import is_vector_side
from streams.events import Event, InvalidEvent, Request, decode_event


@dataclass(frozen=True)
class Mismatch:
    request_id: str
    item_id: str
    logged: Vector
    point_in_time: Vector

    def __str__(self) -> str:
        keys = sorted(set(self.logged) | set(self.point_in_time))
        diff = {k: (self.logged.get(k), self.point_in_time.get(k)) for k in keys
                if self.logged.get(k) != self.point_in_time.get(k)}
        return f"request {self.request_id} item {self.item_id}: (logged, point-in-time) differ on {diff}"


def point_in_time_states(events: Iterable[dict[str, Any] | bytes],
                         features: FeatureSet) -> Iterator[tuple[Request, dict[str, Any]]]:
    """Each request of ``events`` with the user's state rebuilt from scratch out of the user's earlier events."""
    history: dict[str, list[tuple[int, Event]]] = defaultdict(list)
    for position, raw in enumerate(events):
        try:
            event = decode_event(raw if isinstance(raw, bytes) else orjson.dumps(raw))
        except InvalidEvent:
            continue
        if isinstance(event, Request):
            state: dict[str, Any] = {}
            for earlier_position, earlier in history[event.user_id]:
                features.expire(state, earlier.ts)
                features.update(state, earlier, earlier_position)
            features.expire(state, event.ts)
            yield event, state
        history[event.user_id].append((position, event))


def point_in_time_vectors(events: Iterable[dict[str, Any] | bytes], features: FeatureSet) -> dict[str, list[Vector]]:
    """request_id -> vectors rebuilt from the user's earlier events only."""
    return {request.request_id: features.vectors(copy.deepcopy(state), request)
            for request, state in point_in_time_states(events, features)}


def point_in_time_mismatches(events: Sequence[dict[str, Any] | bytes], feature_log: Iterable[dict[str, Any]],
                             features: FeatureSet) -> list[Mismatch]:
    """Every (request, candidate) whose logged vector differs from the point-in-time one."""
    expected = point_in_time_vectors(events, features)
    mismatches = []
    for record in feature_log:
        rebuilt = expected.get(record["request_id"], [])
        for i, logged in enumerate(record["features"]):
            again = rebuilt[i] if i < len(rebuilt) else {}
            # Item-side and item-vector features come from other users' events: features/itemparity.py and
            # features/vectorparity.py check them.
            x = {k: v for k, v in logged["x"].items() if not (is_item_side(k) or is_vector_side(k))}
            if x != again:
                mismatches.append(Mismatch(record["request_id"], logged["item_id"], x, again))
    return mismatches
