"""A versioned set of feature definitions: updates the user state and builds request vectors.

Besides the features' own slots, the state holds two bookkeeping entries: ``_ts``, the newest event time
seen for the user (for expiry), and ``_pos``, the input position of the last event applied to it (so a
redelivered event is not applied twice; see :meth:`FeatureSet.already_applied`).

>>> from streams.events import Request, Candidate, Interaction
>>> fs = FeatureSet([Activity(), CandidateAttributes()])
>>> state = {}
>>> fs.update(state, Interaction("e1", "u1", 100.0, "view", item_id="a"), position=0)
>>> req = Request("e2", "u1", 160.0, "request", request_id="r1",
...               candidates=(Candidate("a", {"price": 5.0}), Candidate("b")))
>>> [sorted(v) for v in fs.vectors(state, req)]  # doctest: +NORMALIZE_WHITESPACE
[['activity_events', 'activity_log_secs_since_last', 'cand_log_price', 'cand_position', 'cand_price', 'slot=0'],
 ['activity_events', 'activity_log_secs_since_last', 'cand_position', 'slot=1']]
>>> fs.already_applied(state, 0), fs.already_applied(state, 1)
(True, False)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from features.base import CandidateFeature, Feature, UserFeature, Vector
from features.builtin import (
    Activity,
    AttributeAffinity,
    CandidateAttributes,
    CandidateId,
    ClickThroughRate,
    DecayedTypeCounts,
    ItemActions,
    ItemInteractions,
    RequestContext,
    TypeCounts,
    TypeRecency,
    WindowCounts,
)
from features.state import UserState
from streams.events import Candidate, Event, Request

LAST_TS, LAST_POSITION = "_ts", "_pos"


def default_features() -> list[Feature]:
    return [
        Activity(),
        TypeCounts(),
        DecayedTypeCounts(),
        WindowCounts(),
        TypeRecency(),
        ClickThroughRate(),
        RequestContext(),
        CandidateAttributes(),
        ItemInteractions(),
        ItemActions(),
        AttributeAffinity(),
        CandidateId(),
    ]


class FeatureSet:
    def __init__(self, features: Sequence[Feature], user_ttl: float | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        names = [f.name for f in features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"feature names must be unique; declared twice: {', '.join(duplicated)}")
        reserved = [n for n in names if n.startswith("_")]
        if reserved:
            raise ValueError(f"feature names starting with '_' are reserved: {', '.join(reserved)}")
        self.features = tuple(features)
        self.user_ttl = user_ttl
        """Event-time seconds of inactivity after which a user's state is forgotten (``None``: never)."""
        self.extra = extra
        """Parameters of values added outside the user's state (the item side), for the fingerprint only."""
        self._user = tuple(f for f in features if isinstance(f, UserFeature))
        self._candidate = tuple(f for f in features if isinstance(f, CandidateFeature))
        self._stateful = tuple(f for f in features if f.reads)
        named = {t for f in self._stateful for t in f.reads if t != "*"}
        self._readers = {t: self._reading(t) for t in (*sorted(named), None)}
        """Per event type, the features it updates, in order; ``None``: any type no feature names (bounded)."""
        self.fingerprint = self._fingerprint()
        """Names, versions and parameters of every definition, hashed: the feature log's ``schema``."""

    @classmethod
    def default(cls, user_ttl: float | None = None, extra: dict[str, Any] | None = None) -> FeatureSet:
        return cls(default_features(), user_ttl, extra)

    def _fingerprint(self) -> str:
        spec = [[f.name, f.version, type(f).__name__, f.params()] for f in self.features]
        spec.append(["_ttl", self.user_ttl])
        if self.extra:
            spec.append(["_extra", self.extra])
        digest = hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"fs-{digest[:16]}"

    def expire(self, state: UserState, ts: float) -> bool:
        """Forget the user if inactive for longer than the TTL before ``ts``; say whether it was forgotten."""
        last = state.get(LAST_TS)
        if self.user_ttl is None or last is None or ts - last <= self.user_ttl:
            return False
        state.clear()
        return True

    def is_expired(self, state: UserState, watermark: float) -> bool:
        last = state.get(LAST_TS)
        return self.user_ttl is not None and last is not None and watermark - last > self.user_ttl

    def vectors(self, state: UserState, request: Request) -> list[Vector]:
        """One vector per candidate, from ``state`` as it is: call before :meth:`update` with the request."""
        user: Vector = {}
        for f in self._user:
            user.update(f.values(state.get(f.name), request))
        out = []
        for position, candidate in enumerate(request.candidates):
            x = dict(user)
            for cf in self._candidate:
                x.update(cf.values(state.get(cf.name), request, candidate, position))
            out.append(x)
        return out

    def describe(self, state: UserState, ts: float, item_ids: Sequence[str] = ()) -> dict[str, Any]:
        """A user's features as of ``ts`` (user-level, and per item for ``item_ids``), for people to read."""
        probe = Request("inspect", "", ts, "request", request_id="inspect",
                        candidates=tuple(Candidate(i) for i in item_ids))
        user: Vector = {}
        for f in self._user:
            user.update(f.values(state.get(f.name), probe))
        items = {c.item_id: x for c, x in zip(probe.candidates, self.vectors(state, probe), strict=True)
                 if item_ids}
        return {"as_of": ts, "schema": self.fingerprint, "features": user,
                "items": {i: {k: v for k, v in x.items() if k not in user} for i, x in items.items()}}

    @staticmethod
    def already_applied(state: UserState, position: int) -> bool:
        """Whether the event at input ``position`` (a partition offset) is already in the state.

        A user lives in one partition, so its events arrive in increasing offsets; a redelivery after a
        crash repeats offsets the state may already contain, and applying them again would count twice.
        """
        last = state.get(LAST_POSITION)
        return last is not None and position <= last

    def _reading(self, event_type: str | None) -> tuple[Feature, ...]:
        return tuple(f for f in self._stateful if event_type in f.reads or "*" in f.reads)

    def update(self, state: UserState, event: Event, position: int) -> None:
        """Apply ``event`` (read at input ``position``) to every feature that reads its type."""
        readers = self._readers.get(event.type)
        for f in self._readers[None] if readers is None else readers:
            state[f.name] = f.update(state.get(f.name), event)
        last = state.get(LAST_TS)
        state[LAST_TS] = event.ts if last is None else max(last, event.ts)
        state[LAST_POSITION] = position
