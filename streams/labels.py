"""The label join: labels meet the vector that was *logged when the request was scored*.

A scored request waits in its user's state (``_pending``) with, per candidate, the exact vector and the
scores served. A label (a ``click``, or a ``conversion`` when that is the label) on one of its candidates
within the attribution window marks that candidate positive; when the window closes under the partition's
watermark, the request's examples go out together: the labelled candidates positive, the others negative.

Why not send a positive at once: a learner would then see each request's positives a window earlier than
its negatives, so the examples it has learned from at any moment over-represent positives, and the model
over-predicts (measured on the simulator: mean served score 0.21-0.29 for a label rate of 0.11, log loss
twice the baseline's). Waiting for the window delays learning by the window, and biases nothing.

A label after the window, or for a request already closed, is late: counted, not learned. A label for a
request this user never had is dead-lettered by the caller. Windows are event time: ``request.ts + window``.

Pending requests live in the user's state so that a request, its labels and the user's features are written
together, once per batch, under the same redelivery guard.

>>> join = LabelJoin(window=60.0, max_pending=8)
>>> state = {}
>>> from streams.events import Request, Candidate, Click
>>> req = Request("e1", "u", 100.0, "request", request_id="r1", candidates=(Candidate("a"), Candidate("b")))
>>> join.add_request(state, req, vectors=[{"f": 1.0}, {"f": 2.0}], scores={"prod": [0.6, 0.4]}, arm="A",
...                  served_model="prod", versions={"prod": 0}, schema="fs-x")
[]
>>> join.label(state, Click("e2", "u", 130.0, "click", request_id="r1", item_id="b")).outcome
'positive'
>>> [(e["item_id"], e["y"], e["x"], e["label_ts"]) for e in join.close(state, "r1")]
[('a', 0, {'f': 1.0}, 160.0), ('b', 1, {'f': 2.0}, 130.0)]
>>> join.label(state, Click("e3", "u", 150.0, "click", request_id="r1", item_id="a")).outcome
'late'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.events import Click, Conversion, Event, Request

PENDING, CLOSED = "_pending", "_closed"
MAX_CLOSED = 64
"""Closed request ids remembered per user, to tell a late label from a label for an unknown request."""

Example = dict[str, Any]


@dataclass(frozen=True)
class LabelResult:
    outcome: str
    """``positive``, ``duplicate``, ``late``, ``unknown_request``, ``unknown_item`` or ``unattributable``."""
    examples: list[Example] = field(default_factory=list)
    reason: str = ""


@dataclass(frozen=True)
class LabelJoin:
    window: float
    max_pending: int

    @staticmethod
    def is_label(event: Event, label: str) -> bool:
        wanted = Click if label == "click" else Conversion
        return isinstance(event, wanted)

    def add_request(self, state: dict[str, Any], request: Request, *, vectors: list[dict[str, float]],
                    scores: dict[str, list[float]], arm: str, served_model: str, versions: dict[str, int],
                    schema: str) -> list[Example]:
        """Keep a scored request until its window closes; returns examples of requests closed early to
        respect ``max_pending`` (oldest first)."""
        pending = state.setdefault(PENDING, {})
        pending[request.request_id] = {
            "user_id": request.user_id,
            "ts": request.ts,
            "deadline": request.ts + self.window,
            "arm": arm,
            "served": served_model,
            "versions": versions,
            "schema": schema,
            "items": [[c.item_id, x, {m: s[i] for m, s in scores.items()}]
                      for i, (c, x) in enumerate(zip(request.candidates, vectors, strict=True))],
            "labels": {},
        }
        evicted: list[Example] = []
        while len(pending) > self.max_pending:
            oldest = min(pending, key=lambda rid: (pending[rid]["deadline"], rid))
            evicted.extend(self.close(state, oldest))
        return evicted

    def label(self, state: dict[str, Any], event: Event) -> LabelResult:
        request_id = getattr(event, "request_id", None)
        if not request_id:
            return LabelResult("unattributable", reason=f"{event.type} {event.event_id} names no request_id")
        pending = state.get(PENDING, {}).get(request_id)
        if pending is None:
            if any(rid == request_id for rid, _ in state.get(CLOSED, [])):
                return LabelResult("late", reason=f"request {request_id} already closed")
            return LabelResult("unknown_request", reason=(
                f"{event.type} {event.event_id}: request {request_id!r} is not known for user {event.user_id!r} "
                "(never scored, expired, or sent with another user_id)"))
        item_ids = [item[0] for item in pending["items"]]
        item_id = getattr(event, "item_id", None)
        if item_id is None and len(item_ids) == 1:
            item_id = item_ids[0]  # a conversion without item_id on a one-candidate request is unambiguous
        if item_id not in item_ids:
            return LabelResult("unknown_item", reason=(
                f"{event.type} {event.event_id}: item {item_id!r} was not a candidate of request {request_id!r}"))
        if event.ts > pending["deadline"]:
            return LabelResult("late", reason=f"after the attribution window of request {request_id}")
        if item_id in pending["labels"]:
            return LabelResult("duplicate")
        pending["labels"][item_id] = event.ts
        return LabelResult("positive")

    def close(self, state: dict[str, Any], request_id: str) -> list[Example]:
        """Close a request: one example per candidate, in candidate order; remember the request as closed."""
        pending = state.get(PENDING, {}).pop(request_id, None)
        if pending is None:
            return []
        if not state[PENDING]:
            del state[PENDING]
        closed = state.setdefault(CLOSED, [])
        closed.append([request_id, pending["deadline"]])
        del closed[:-MAX_CLOSED]
        labels = pending["labels"]
        return [self._example(request_id, pending, i, int(item[0] in labels), labels.get(item[0], pending["deadline"]))
                for i, item in enumerate(pending["items"])]

    @staticmethod
    def deadlines(state: dict[str, Any]) -> list[tuple[float, str]]:
        """(deadline, request_id) of the user's pending requests (to rebuild the index after a restart)."""
        return sorted((p["deadline"], rid) for rid, p in state.get(PENDING, {}).items())

    @staticmethod
    def _example(request_id: str, pending: dict[str, Any], index: int, y: int, label_ts: float) -> Example:
        item_id, x, scores = pending["items"][index]
        return {
            "request_id": request_id,
            "item_id": item_id,
            "user_id": pending["user_id"],
            "ts": pending["ts"],
            "label_ts": label_ts,
            "x": x,
            "y": y,
            "scores_at_serve": scores,
            "arm": pending["arm"],
            "served_model": pending["served"],
            "model_versions": pending["versions"],
            "schema": pending["schema"],
        }
