"""A versioned set of feature definitions: updates the user state and builds request vectors.

>>> from streams.events import Request, Candidate, Interaction
>>> fs = FeatureSet.default()
>>> state = {}
>>> fs.update(state, Interaction("e1", "u1", 100.0, "view", item_id="a"))
>>> req = Request("e2", "u1", 160.0, "request", request_id="r1",
...               candidates=(Candidate("a", {"price": 5.0}), Candidate("b")))
>>> [sorted(v.items()) for v in fs.vectors(state, req)]  # doctest: +NORMALIZE_WHITESPACE
[[('activity_events', 1.0), ('activity_log_secs_since_last', 4.110873864173311),
  ('cand_position', 0.0), ('cand_price', 5.0)],
 [('activity_events', 1.0), ('activity_log_secs_since_last', 4.110873864173311),
  ('cand_position', 1.0)]]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson

from features.base import CandidateFeature, Feature, UserFeature, Vector
from features.builtin import CandidateAttributes, EventCount, RequestContext
from features.state import UserState
from streams.events import Event, Request


class FeatureSet:
    def __init__(self, features: Sequence[Feature]) -> None:
        names = [f.name for f in features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"feature names must be unique; declared twice: {', '.join(duplicated)}")
        self.features = tuple(features)
        self._user = tuple(f for f in features if isinstance(f, UserFeature))
        self._candidate = tuple(f for f in features if isinstance(f, CandidateFeature))
        self._stateful = tuple(f for f in features if f.reads)
        self.fingerprint = self._fingerprint()
        """Names, versions and parameters of every definition, hashed: the feature log's ``schema``."""

    @classmethod
    def default(cls) -> FeatureSet:
        return cls([EventCount(), RequestContext(), CandidateAttributes()])

    def _fingerprint(self) -> str:
        spec = [[f.name, f.version, type(f).__name__, f.params()] for f in self.features]
        digest = hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"fs-{digest[:16]}"

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

    def update(self, state: UserState, event: Event) -> None:
        """Apply ``event`` to every feature that reads its type."""
        for f in self._stateful:
            if event.type in f.reads or "*" in f.reads:
                state[f.name] = f.update(state.get(f.name), event)
