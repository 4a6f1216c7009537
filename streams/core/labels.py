"""The label join: labels meet the vector that was *logged when the request was scored*.

A scored request waits in its user's state (``_pending``) with, per candidate, the exact vector and the
scores served. A label (a ``click``, or a ``conversion`` when that is the label) on one of its candidates
within the attribution window marks that candidate positive; when the window closes under the partition's
watermark, the request's examples go out together: the labelled candidates positive, the others negative.

Why not send a positive at once: a learner would then see each request's positives a window earlier than
its negatives, so the examples it has learned from at any moment over-represent positives, and the model
over-predicts (measured on the simulator: mean served score 0.21-0.29 for a label rate of 0.11, log loss
twice the baseline's). Waiting for the window delays learning by the window, and biases nothing. To learn
before the window closes without that bias, ``STREAMSCORE_LEARN_FROM=fnw`` sends every candidate early as a
fake negative and its positive again, weighted by the learner (``streams/core/early.py``, ``models/fnw.py``);
the window-closed examples still go out, for the metrics.

The label rule is :class:`LabelRule`, its one home: which event type labels (``STREAMSCORE_LABEL``, one of
:data:`LABEL_EVENTS`) and its attribution window (the setting :data:`WINDOW_SETTINGS` names).

A label after the window, or for a request already closed, is late: counted, not learned. A label for a
request this user never had is dead-lettered by the caller. Windows are event time: ``request.ts + window``.

A waiting request (its vectors are several KB) is kept in a store of its own, by request id (the worker's
``pending`` table, changelog-backed, partitioned like the user); the user's state keeps only the small index
of its waiting and recently closed request ids (``_pending``, ``_closed``), so that per-user state stays small.

>>> from streams.events import Request, Candidate, Click
>>> from streams.core.statecache import PendingCache
>>> join, state, pending = LabelJoin(window=60.0, max_pending=8), {}, PendingCache(lambda rid: None)
>>> req = Request("e1", "u", 100.0, "request", request_id="r1", candidates=(Candidate("a"), Candidate("b")))
>>> join.add_request(state, pending, req, vectors=[{"f": 1.0}, {"f": 2.0}], scores={"prod": [0.6, 0.4]},
...                  arm="A", served_model="prod", versions={"prod": 0}, schema="fs-x")
[]
>>> join.label(state, pending, Click("e2", "u", 130.0, "click", request_id="r1", item_id="b")).outcome
'positive'
>>> [(e["item_id"], e["y"], e["x"], e["label_ts"]) for e in join.close(state, pending, "r1")]
[('a', 0, {'f': 1.0}, 160.0), ('b', 1, {'f': 2.0}, 130.0)]
>>> join.label(state, pending, Click("e3", "u", 150.0, "click", request_id="r1", item_id="a")).outcome
'late'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from streams.core.records import LoggedVector, example_record
from streams.events import Click, Conversion, Event, Request

PENDING, CLOSED = "_pending", "_closed"
MAX_CLOSED = 64
"""Closed request ids remembered per user, to tell a late label from a label for an unknown request."""

Example = dict[str, Any]


LABEL_EVENTS: dict[str, type[Event]] = {"click": Click, "conversion": Conversion}
"""The event types that can be the label, and the class each decodes to."""
WINDOW_SETTINGS = {"click": "click_window", "conversion": "conversion_window"}
"""The setting that holds each label type's attribution window (event-time seconds after the request)."""


class LabelSettings(Protocol):
    """What the rule reads of :class:`streams.settings.Settings` (named, not imported: settings validates with
    this module, so this module does not import it)."""

    @property
    def label(self) -> str: ...

    @property
    def click_window(self) -> float: ...

    @property
    def conversion_window(self) -> float: ...


S = TypeVar("S", bound=LabelSettings)


@dataclass(frozen=True)
class LabelRule:
    """Which event labels a request, and within how long of it.

    >>> rule = LabelRule.of(with_label(_Defaults(), "conversion", window=7200.0))
    >>> rule, rule.matches(Conversion("e", "u", 1.0, "conversion", request_id="r")), rule.matches(
    ...     Click("e", "u", 1.0, "click", request_id="r", item_id="a"))
    (LabelRule(kind='conversion', window=7200.0), True, False)
    """

    kind: str
    window: float

    @classmethod
    def of(cls, settings: LabelSettings) -> LabelRule:
        return cls(settings.label, float(getattr(settings, WINDOW_SETTINGS[settings.label])))

    def matches(self, event: Event) -> bool:
        return isinstance(event, LABEL_EVENTS[self.kind])


def with_label(settings: S, label: str | None, window: float | None = None) -> S:
    """``settings`` with another label type and/or that label type's window (``streamscore replay --label``)."""
    if label is not None:
        settings = replace(settings, label=label)  # type: ignore[type-var]
    if window is not None:
        settings = replace(settings, **{WINDOW_SETTINGS[settings.label]: window})  # type: ignore[type-var]
    return settings


def longest_window(settings: LabelSettings) -> float:
    """The longest attribution window any label type may have: what per-user state must outlive."""
    return max(float(getattr(settings, name)) for name in WINDOW_SETTINGS.values())


@dataclass(frozen=True)
class _Defaults:  # for the examples above
    label: str = "click"
    click_window: float = 3600.0
    conversion_window: float = 86400.0


class PendingStore(Protocol):
    """Where waiting requests are kept, by request id (``streams.core.processor.PendingCache``)."""

    def get(self, request_id: str) -> dict[str, Any] | None: ...

    def put(self, request_id: str, entry: dict[str, Any] | None) -> None: ...


@dataclass(frozen=True)
class LabelResult:
    outcome: str
    """``positive``, ``duplicate``, ``late``, ``unknown_request``, ``unknown_item`` or ``unattributable``."""
    examples: list[Example] = field(default_factory=list)
    reason: str = ""
    item_id: str | None = None
    """The candidate a ``positive`` labelled."""


@dataclass(frozen=True)
class LabelJoin:
    window: float
    max_pending: int

    def add_request(self, state: dict[str, Any], pending: PendingStore, request: Request, *,
                    vectors: Sequence[Mapping[str, float] | LoggedVector], scores: dict[str, list[float]], arm: str,
                    served_model: str, versions: dict[str, int], schema: str) -> list[Example]:
        """Keep a scored request until its window closes; returns examples of requests closed early to
        respect ``max_pending`` (oldest first)."""
        deadline = request.ts + self.window
        pending.put(request.request_id, {
            "user_id": request.user_id,
            "ts": request.ts,
            "deadline": deadline,
            "arm": arm,
            "served": served_model,
            "versions": versions,
            "schema": schema,
            "items": [[c.item_id, x, {m: s[i] for m, s in scores.items()}]
                      for i, (c, x) in enumerate(zip(request.candidates, vectors, strict=True))],
            "labels": {},
        })
        # Lists of the state are replaced, never changed in place: a failed event is undone by putting the old
        # ones back (features/base.py, Feature.update).
        state[PENDING] = [*state.get(PENDING, ()), [deadline, request.request_id]]
        evicted: list[Example] = []
        while len(state[PENDING]) > self.max_pending:  # close() replaces the list: read it again each time
            _, oldest = min(state[PENDING])
            evicted.extend(self.close(state, pending, oldest))
        return evicted

    def label(self, state: dict[str, Any], pending: PendingStore, event: Event) -> LabelResult:
        request_id = getattr(event, "request_id", None)
        if not request_id:
            return LabelResult("unattributable", reason=f"{event.type} {event.event_id} names no request_id")
        entry = pending.get(request_id) if self.is_waiting(state, request_id) else None
        if entry is None:
            if any(rid == request_id for rid, _ in state.get(CLOSED, [])):
                return LabelResult("late", reason=f"request {request_id} already closed")
            return LabelResult("unknown_request", reason=(
                f"{event.type} {event.event_id}: request {request_id!r} is not known for user {event.user_id!r} "
                "(never scored, expired, or sent with another user_id)"))
        item_ids = [item[0] for item in entry["items"]]
        item_id = getattr(event, "item_id", None)
        if item_id is None and len(item_ids) == 1:
            item_id = item_ids[0]  # a conversion without item_id on a one-candidate request is unambiguous
        if item_id not in item_ids:
            return LabelResult("unknown_item", reason=(
                f"{event.type} {event.event_id}: item {item_id!r} was not a candidate of request {request_id!r}"))
        if event.ts > entry["deadline"]:
            return LabelResult("late", reason=f"after the attribution window of request {request_id}")
        if item_id in entry["labels"]:
            return LabelResult("duplicate")
        pending.put(request_id, {**entry, "labels": {**entry["labels"], item_id: event.ts}})
        return LabelResult("positive", item_id=item_id)

    def close(self, state: dict[str, Any], pending: PendingStore, request_id: str) -> list[Example]:
        """Close a request: one example per candidate, in candidate order; remember the request as closed."""
        if not self.is_waiting(state, request_id):
            return []
        state[PENDING] = [w for w in state[PENDING] if w[1] != request_id]
        if not state[PENDING]:
            del state[PENDING]
        entry = pending.get(request_id)
        pending.put(request_id, None)
        state[CLOSED] = [*state.get(CLOSED, ()), [request_id, entry["deadline"] if entry else None]][-MAX_CLOSED:]
        if entry is None:
            return []  # the index outlived its entry (a crash between the two writes): nothing to learn from
        labels = entry["labels"]
        return [example_record(request_id, entry, i, int(item[0] in labels), labels.get(item[0], entry["deadline"]))
                for i, item in enumerate(entry["items"])]

    @staticmethod
    def is_waiting(state: dict[str, Any], request_id: str) -> bool:
        return request_id in [rid for _, rid in state.get(PENDING, ())]  # a list: no generator per call

    @staticmethod
    def deadlines(state: dict[str, Any]) -> list[tuple[float, str]]:
        """(deadline, request_id) of the user's waiting requests (to rebuild the index after a restart)."""
        return sorted((deadline, rid) for deadline, rid in state.get(PENDING, []))
