"""The feature definitions that ship with streamscore, each declared once."""

from __future__ import annotations

import math
from typing import Any

from features.base import CandidateFeature, UserFeature, Vector
from streams.events import Candidate, Event, Request


class EventCount(UserFeature):
    """How many events the user had before this request, and seconds since the last one (event time).

    Slot: ``[count, last_ts]``.
    """

    name = "activity"
    reads = frozenset({"*"})

    def update(self, slot: Any, event: Event) -> Any:
        count, last_ts = slot if slot else (0, None)
        return [count + 1, event.ts if last_ts is None else max(last_ts, event.ts)]

    def values(self, slot: Any, request: Request) -> Vector:
        if not slot:
            return {"activity_events": 0.0}
        count, last_ts = slot
        return {
            "activity_events": float(count),
            "activity_log_secs_since_last": math.log1p(max(0.0, request.ts - last_ts)),
        }


def _scalar_features(prefix: str, attrs: dict[str, str | float]) -> Vector:
    """Numbers pass through; strings become one-hot categorical features ``prefix_name=value``."""
    out: Vector = {}
    for key, value in attrs.items():
        if isinstance(value, str):
            out[f"{prefix}_{key}={value}"] = 1.0
        else:
            out[f"{prefix}_{key}"] = value
    return out


class RequestContext(UserFeature):
    """The request's context attributes (e.g. device, hour), the same for every candidate."""

    name = "ctx"

    def values(self, slot: Any, request: Request) -> Vector:
        return _scalar_features(self.name, request.context)


class CandidateAttributes(CandidateFeature):
    """The candidate's own attributes (e.g. price) and its position in the request."""

    name = "cand"

    def values(self, slot: Any, request: Request, candidate: Candidate, position: int) -> Vector:
        out = _scalar_features(self.name, candidate.attrs)
        out["cand_position"] = float(position)
        return out
