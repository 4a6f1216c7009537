"""Every feature of the default set keeps the feature contract (``features/checks.py``): a feature added to
``features/featureset.py`` brings these tests with it, with no list here to keep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from features.base import Feature, UserFeature, Vector
from features.checks import (
    CHECKS,
    check_bounded_slot,
    check_json_round_trip,
    check_point_in_time,
    check_update_leaves_its_input_alone,
    check_values_leave_the_state_alone,
)
from features.featureset import FeatureSet, default_features
from streams.events import Event, Request

FEATURES = default_features()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("feature", FEATURES, ids=lambda feature: feature.name)
def test_feature_contract(feature: Feature, check: Callable[[Feature], None]) -> None:
    check(feature)


def test_the_suite_covers_the_default_set() -> None:
    assert [f.name for f in FEATURES] == [f.name for f in FeatureSet.default().features]


# ---------------------------------------------------------------------- the checks catch what they claim to


class Unbounded(UserFeature):
    """Keeps every item it ever saw."""

    name = "unbounded"
    reads = frozenset({"*"})

    def update(self, slot: Any, event: Event) -> Any:
        return [*(slot or []), getattr(event, "item_id", None) or event.event_id]

    def values(self, slot: Any, request: Request) -> Vector:
        return {"unbounded_n": float(len(slot or []))}


class TupleSlot(Unbounded):
    """A tuple does not come back from JSON as a tuple."""

    name = "tuple_slot"

    def update(self, slot: Any, event: Event) -> Any:
        return (event.ts,)

    def values(self, slot: Any, request: Request) -> Vector:
        return {"tuple_slot": 1.0 if isinstance(slot, tuple) else 0.0}


class Writer(Unbounded):
    """Counts the requests it is asked about, in its own slot."""

    name = "writer"

    def update(self, slot: Any, event: Event) -> Any:
        return slot if slot is not None else {"asked": 0}

    def values(self, slot: Any, request: Request) -> Vector:
        if slot is not None:
            slot["asked"] += 1
        return {}


class Memory(Unbounded):
    """Remembers, in itself rather than in the state, how often it was asked: not a function of the past."""

    name = "memory"

    def __init__(self) -> None:
        self.asked = 0

    def values(self, slot: Any, request: Request) -> Vector:
        self.asked += 1
        return {"memory": float(self.asked)}


class InPlace(Unbounded):
    """Counts events by type in the very dict it was given: undoing a failed event would keep the count."""

    name = "in_place"

    def update(self, slot: Any, event: Event) -> Any:
        slot = slot if slot is not None else {}
        slot[event.type] = slot.get(event.type, 0) + 1
        return slot


@pytest.mark.parametrize(("feature", "check", "says"), [
    (Unbounded(), check_bounded_slot, "keeps growing"),
    (InPlace(), check_update_leaves_its_input_alone, "changed the slot it was given"),
    (TupleSlot(), check_json_round_trip, "through JSON"),
    (Writer(), check_values_leave_the_state_alone, "changed the slot"),
    (Memory(), check_point_in_time, "not point-in-time"),
])
def test_a_broken_feature_fails_its_check(feature: Feature, check: Callable[[Feature], None], says: str) -> None:
    with pytest.raises(AssertionError, match=says):
        check(feature)
