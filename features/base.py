"""What a feature is: a named, versioned declaration that owns one slot of the user's state.

A :class:`UserFeature` is updated by the events it ``reads`` and gives values that are the same for every
candidate of a request; a :class:`CandidateFeature` gives values per candidate (it may read the user's state
too, e.g. "has the user seen this item"). Values are computed from the state *as of just before* the
request: the vector builder never hands a feature the triggering event's own state change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from streams.events import Candidate, Event, Request

Vector = dict[str, float]


class Feature(ABC):
    name: str
    """Unique name; also the key of the feature's slot in the user state and the prefix of its values."""
    version: int = 1
    """Bump when the meaning of the values changes: the feature-set fingerprint changes with it."""
    reads: frozenset[str] = frozenset()
    """Event types that update the feature's slot (``"*"`` for all); empty for stateless features."""

    def params(self) -> dict[str, Any]:
        """Parameters that change the values; part of the fingerprint."""
        return {}

    def update(self, slot: Any, event: Event) -> Any:
        """Return the new slot after ``event`` (only called for event types in :attr:`reads`), leaving ``slot``
        and everything in it as it was: copy what changes. The worker undoes an event that failed half-way by
        putting the state's old slots back, which is only right if no update changed them in place (the
        contract check ``check_update_leaves_its_input_alone``); a deep copy of the state per event was a tenth of
        the processor's time."""
        return slot


class UserFeature(Feature):
    @abstractmethod
    def values(self, slot: Any, request: Request) -> Vector:
        """Values for the request from the state before it; the request gives the query time."""


class CandidateFeature(Feature):
    @abstractmethod
    def values(self, slot: Any, request: Request, candidate: Candidate, position: int) -> Vector:
        """Values for one candidate, at ``position`` (0-based) in the request."""
