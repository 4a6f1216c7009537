"""The contract every feature keeps, as checks that take the feature (in the spirit of River's ``river/checks``).

``tests/unit/test_feature_contracts.py`` runs every check over every feature of the default set
(:func:`features.featureset.default_features`), so a feature added there brings its contract tests with it:

- :func:`check_bounded_slot`: the slot stops growing however many events, types, items and values it sees;
- :func:`check_json_round_trip`: the slot survives ``orjson`` unchanged (the state is stored as JSON), and so do
  the values and the next update computed from it;
- :func:`check_values_leave_the_state_alone`: computing values never changes the slot;
- :func:`check_update_leaves_its_input_alone`: an update returns a new slot and leaves the old one as it was
  (the worker undoes a failed event by putting the old slots back);
- :func:`check_point_in_time`: through a replay, every logged vector is the one rebuilt from the user's earlier
  events only (the parity check, :mod:`features.parity`).

The item-side features (``features/itemside.py``), which read no user state but the shared item table, keep
their own contract, :data:`ITEM_CHECKS`, run by the same test module:

- :func:`check_item_point_in_time`: through a replay, every logged ``xitem_`` feature is the one recomputed by
  brute force from the deltas the visibility rule allows (:mod:`features.itemparity`);
- :func:`check_item_table_bounded`: the item table keeps at most ``item_max_keys`` keys, and the deltas it
  holds back are only those of the last ``item_lag`` seconds.

Each check raises :class:`AssertionError` naming the feature and what broke.

>>> from features.builtin import Activity
>>> for check in CHECKS:
...     check(Activity())
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from features.base import CandidateFeature, Feature, UserFeature, Vector
from features.featureset import FeatureSet
from features.parity import point_in_time_mismatches
from streams.events import Event, Request, decode_event

__all__ = ["CHECKS", "ITEM_CHECKS", "SLOT_BUDGET", "check_bounded_slot", "check_item_point_in_time",
           "check_item_table_bounded", "check_json_round_trip", "check_point_in_time",
           "check_update_leaves_its_input_alone", "check_values_leave_the_state_alone", "event_stream"]

SLOT_BUDGET = 4096
"""Bytes a feature's encoded slot may take at most: the whole state is documented at ~5 KB worst case."""

# More distinct types, items and attribute values than any bound of the default features, so a slot that
# keeps one entry per distinct key shows its growth.
_TYPES = ["request", "click", "conversion", "view", "add_to_cart", *(f"type{i:02d}" for i in range(30))]
_ITEMS = [f"item{i:04d}" for i in range(400)]
_CATEGORIES = [f"cat{i:03d}" for i in range(80)]


def event_stream(n: int, seed: int = 7, users: int = 1) -> list[dict[str, Any]]:
    """``n`` events (JSON objects, as producers write them) of ``users`` users: every type, some late, requests
    with priced and categorised candidates and a context, clicks and conversions naming earlier requests."""
    rng = random.Random(seed)
    ts = 1_700_000_000.0
    events: list[dict[str, Any]] = []
    requests: list[tuple[str, str, list[str]]] = []
    for i in range(n):
        ts += rng.uniform(0.0, 300.0)
        t = ts - rng.uniform(0.0, 60.0) if rng.random() < 0.1 else ts
        user = f"u{rng.randrange(users)}"
        type_ = rng.choice(_TYPES)
        event: dict[str, Any] = {"event_id": f"e{i}", "user_id": user, "ts": t, "type": type_}
        if type_ == "request":
            items = rng.sample(_ITEMS, 3)
            event.update(request_id=f"r{i}", context={"device": rng.choice(["ios", "web"]), "hour": float(i % 24)},
                         candidates=[{"item_id": item, "price": round(rng.uniform(1, 500), 2),
                                      "category": rng.choice(_CATEGORIES)} for item in items])
            requests.append((user, f"r{i}", items))
        elif type_ in ("click", "conversion"):
            mine = [r for r in requests[-20:] if r[0] == user]
            if not mine:
                event.update(type="view", item_id=rng.choice(_ITEMS))
            else:
                _, request_id, items = rng.choice(mine)
                event.update(request_id=request_id, item_id=rng.choice(items))
                if type_ == "conversion":
                    event["value"] = round(rng.uniform(1, 100), 2)
        else:
            event.update(item_id=rng.choice(_ITEMS),
                         props={"category": rng.choice(_CATEGORIES), "brand": f"b{rng.randrange(60)}"})
        events.append(event)
    return events


def _decoded(events: list[dict[str, Any]]) -> Iterator[Event]:
    for event in events:
        yield decode_event(orjson.dumps(event))


def _reads(feature: Feature, event: Event) -> bool:
    return "*" in feature.reads or event.type in feature.reads


def _values(feature: Feature, slot: Any, request: Request) -> list[Vector]:
    if isinstance(feature, UserFeature):
        return [feature.values(slot, request)]
    assert isinstance(feature, CandidateFeature), f"{feature.name}: neither a user nor a candidate feature"
    return [feature.values(slot, request, c, i) for i, c in enumerate(request.candidates)]


def _feed(feature: Feature, events: list[dict[str, Any]], slot: Any = None) -> Any:
    for event in _decoded(events):
        if _reads(feature, event):
            slot = orjson.loads(orjson.dumps(feature.update(slot, event)))  # stored as JSON between events
    return slot


def _leaves(value: Any) -> int:
    """Scalars in a JSON value: what grows when a slot keeps one entry per distinct key."""
    if isinstance(value, dict):
        return len(value) + sum(_leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(_leaves(v) for v in value)
    return 1


def check_bounded_slot(feature: Feature, n: int = 2000) -> None:
    """After ``4 n`` events the slot holds no more entries than after ``n``, and fits :data:`SLOT_BUDGET`."""
    events = event_stream(4 * n)
    early = _feed(feature, events[:n])
    late = _feed(feature, events[n:], early)
    assert _leaves(late) <= _leaves(early), (
        f"{feature.name}: the slot keeps growing ({_leaves(early)} entries after {n} events, "
        f"{_leaves(late)} after {4 * n}): bound it")
    size = len(orjson.dumps(late))
    assert size <= SLOT_BUDGET, f"{feature.name}: slot of {size} bytes, more than {SLOT_BUDGET}"


def check_json_round_trip(feature: Feature, n: int = 600) -> None:
    """Each slot is JSON-stable, and values and the next update are the same from its stored form."""
    slot: Any = None
    for event in _decoded(event_stream(n)):
        stored = orjson.loads(orjson.dumps(slot))
        assert stored == slot, f"{feature.name}: the slot changes through JSON: {slot!r} -> {stored!r}"
        if isinstance(event, Request):
            assert _values(feature, stored, event) == _values(feature, slot, event), (
                f"{feature.name}: values differ once the slot is read back from JSON")
        if _reads(feature, event):
            slot, again = feature.update(copy.deepcopy(slot), event), feature.update(stored, event)
            assert orjson.dumps(slot) == orjson.dumps(again), (
                f"{feature.name}: the update differs once the slot is read back from JSON")


def check_values_leave_the_state_alone(feature: Feature, n: int = 600) -> None:
    """``values`` reads the slot and never writes it (vectors are built from the state before the event)."""
    slot: Any = None
    for event in _decoded(event_stream(n)):
        if isinstance(event, Request):
            before = copy.deepcopy(slot)
            _values(feature, slot, event)
            assert slot == before, f"{feature.name}: values() changed the slot: {before!r} -> {slot!r}"
        if _reads(feature, event):
            slot = feature.update(slot, event)


def check_update_leaves_its_input_alone(feature: Feature, n: int = 2000) -> None:
    """``update`` returns the new slot and changes nothing in the one it was given: not the slot, not what it holds
    (the old slots are the worker's undo of an event that failed half-way, ``StateCache.snapshot``). Long enough
    for every bound to evict."""
    slot: Any = None
    for event in _decoded(event_stream(n)):
        if _reads(feature, event):
            before = copy.deepcopy(slot)
            updated = feature.update(slot, event)
            assert slot == before, (
                f"{feature.name}: update() changed the slot it was given ({event.type} at {event.ts}): copy what "
                f"changes and return the copy: {before!r} -> {slot!r}")
            slot = updated


def check_point_in_time(feature: Feature, n: int = 400) -> None:
    """A replay with this feature alone logs, for every request, the vector of the user's earlier events only."""
    # The worker's own path, imported here only: features/ is below streams/ everywhere else.
    from models.experiment import scorer_from_settings
    from streams.core.processor import Processor
    from streams.replay.driver import ReplayDriver
    from streams.settings import Settings

    settings = Settings()
    features = FeatureSet([feature], settings.user_ttl)
    driver = ReplayDriver(settings, Processor(settings, features, scorer_from_settings(settings)))
    events = event_stream(n, users=3)
    driver.pipe_all(events)
    logged = driver.read("feature-log")
    assert logged, f"{feature.name}: the replay logged no request"
    mismatches = point_in_time_mismatches(events, logged, features)
    assert not mismatches, f"{feature.name}: {len(mismatches)} vectors not point-in-time, e.g. {mismatches[0]}"


CHECKS: tuple[Callable[[Feature], None], ...] = (
    check_bounded_slot, check_json_round_trip, check_values_leave_the_state_alone, check_update_leaves_its_input_alone,
    check_point_in_time)


def _item_replay(settings: Any, events: list[dict[str, Any]], processor: Any = None) -> Any:
    from streams.replay.driver import ReplayDriver

    driver = ReplayDriver(settings, processor)
    driver.pipe_all(events)
    driver.finish()
    return driver


def check_item_point_in_time(processor_factory: Callable[[Any], Any] | None = None, n: int = 1500) -> None:
    """A replay logs, for every candidate, the item-side features the visibility rule allows, no more, no less.

    ``processor_factory(settings)`` builds the processor under test (default: the worker's).
    """
    from features.itemparity import item_mismatches
    from streams.settings import Settings
    from streams.tools.simulate import simulate

    settings = Settings()
    events, _ = simulate(users=30, events=n, seed=3)
    processor = processor_factory(settings) if processor_factory is not None else None
    logged = _item_replay(settings, events, processor).read("feature-log")
    assert logged and any(f["x"].get("xitem_labels") for r in logged for f in r["features"]), (
        "item side: no logged vector saw an item's label: the check proves nothing")
    mismatches = item_mismatches(events, logged, settings)
    assert not mismatches, f"item side: {len(mismatches)} vectors break the visibility rule, e.g. {mismatches[0]}"


def check_item_table_bounded(max_keys: int = 50, n: int = 3000) -> None:
    """At most ``max_keys`` keys, however many items; only the last ``lag`` seconds' deltas wait."""
    import dataclasses

    from streams.settings import Settings

    settings = dataclasses.replace(Settings(), item_max_keys=max_keys)
    driver = _item_replay(settings, event_stream(n, users=20))
    stats = driver.processor.items.stats
    assert len(stats) <= max_keys, f"item table: {len(stats)} keys, more than {max_keys}"
    assert stats.evicted > 0, "item table: nothing evicted: the stream did not test the bound"
    assert all(v - stats.now <= settings.item_lag for v, _, _ in stats._waiting), "item table: a delta waits too long"


ITEM_CHECKS: tuple[Callable[[], None], ...] = (check_item_point_in_time, check_item_table_bounded)
