"""Unit tests of features.builtin and features.featureset, with hand-computed expectations."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from features.base import Feature, UserFeature, Vector
from features.builtin import (
    DAY,
    HOUR,
    MAX_SLOT,
    MAX_TYPES,
    WEEK,
    Activity,
    AttributeAffinity,
    CandidateAttributes,
    ClickThroughRate,
    DecayedTypeCounts,
    ItemInteractions,
    RequestContext,
    TypeCounts,
    TypeRecency,
    WindowCounts,
)
from features.featureset import FeatureSet, default_features
from features.state import encode_state
from streams.events import Candidate, Click, Conversion, Event, Interaction, Request

# ------------------------------------------------------------------------------------------------ helpers


def ev(ts: float, type_: str = "view", item: str | None = None, **props: Any) -> Interaction:
    return Interaction(f"e{ts}-{type_}", "u1", ts, type_, item_id=item, props=props)


def req(ts: float, *candidates: Candidate | str, context: dict[str, str | float] | None = None,
        request_id: str = "r") -> Request:
    cands = tuple(c if isinstance(c, Candidate) else Candidate(c) for c in candidates) or (Candidate("x"),)
    return Request(f"e{ts}-req", "u1", ts, "request", request_id=request_id, candidates=cands,
                   context=context or {})


def click(ts: float, item: str = "x") -> Click:
    return Click(f"e{ts}-click", "u1", ts, "click", request_id="r", item_id=item)


def feed(feature: Feature, events: Sequence[Event], slot: Any = None) -> Any:
    """Apply events to one feature's slot as the FeatureSet does (only the types it reads), JSON round trip."""
    for event in events:
        if "*" in feature.reads or event.type in feature.reads:
            slot = feature.update(slot, event)
    return orjson.loads(orjson.dumps(slot))


# ----------------------------------------------------------------------------------------------- Activity


def test_activity_empty_state_has_zero_events_and_no_recency() -> None:
    assert Activity().values(None, req(100.0)) == {"activity_events": 0.0}


def test_activity_counts_events_and_keeps_the_newest_ts() -> None:
    slot = feed(Activity(), [ev(100.0), ev(90.0), click(80.0)])  # two late events: last_ts stays 100
    assert slot == [3, 100.0]
    assert Activity().values(slot, req(160.0)) == {
        "activity_events": 3.0,
        "activity_log_secs_since_last": math.log(61.0),  # log1p(60)
    }


def test_activity_request_before_the_last_event_clamps_to_zero_seconds() -> None:
    assert Activity().values([1, 100.0], req(50.0))["activity_log_secs_since_last"] == 0.0


# --------------------------------------------------------------------------------------------- TypeCounts


def test_type_counts_per_type_sorted() -> None:
    slot = feed(TypeCounts(), [ev(1.0), click(2.0), ev(3.0), req(4.0)])
    assert slot == {"view": 2, "click": 1, "request": 1}
    values = TypeCounts().values(slot, req(5.0))
    assert values == {"count_click": 1.0, "count_request": 1.0, "count_view": 2.0}
    assert list(values) == ["count_click", "count_request", "count_view"]
    assert TypeCounts().values(None, req(5.0)) == {}


def test_type_counts_beyond_max_types_go_to_other() -> None:
    assert MAX_TYPES == 16
    types = [f"t{i:02d}" for i in range(18)]  # 16 tracked, t16 and t17 become "other"
    slot = feed(TypeCounts(), [ev(float(i), t) for i, t in enumerate(types)] + [ev(20.0, "t00"), ev(21.0, "t17")])
    assert len(slot) == MAX_TYPES + 1
    assert slot["t00"] == 2
    assert slot["t15"] == 1
    assert slot["other"] == 3  # t16, t17, t17
    assert "t16" not in slot and "t17" not in slot
    assert TypeCounts().values(slot, req(30.0))["count_other"] == 3.0


# -------------------------------------------------------------------------------------- DecayedTypeCounts


def test_decayed_counts_after_exactly_one_half_life() -> None:
    f = DecayedTypeCounts(half_lives=(10.0,), types=("click",))
    slot = feed(f, [ev(100.0), click(100.0)])
    assert slot == {"10:all": [2.0, 100.0], "10:click": [1.0, 100.0]}
    assert f.values(slot, req(110.0)) == {"decayed_10s_all": 1.0, "decayed_10s_click": 0.5}
    assert f.values(slot, req(120.0)) == {"decayed_10s_all": 0.5, "decayed_10s_click": 0.25}


def test_decayed_counts_defaults_one_hour_later() -> None:
    f = DecayedTypeCounts()
    assert f.half_lives == (HOUR, DAY, WEEK) and f.types == ("request", "click")
    slot = feed(f, [ev(0.0)])
    assert sorted(slot) == ["3600:all", "604800:all", "86400:all"]
    values = f.values(slot, req(3600.0))
    assert values == {
        "decayed_3600s_all": 0.5,
        "decayed_3600s_request": 0.0,
        "decayed_3600s_click": 0.0,
        "decayed_86400s_all": pytest.approx(2 ** (-1 / 24)),
        "decayed_86400s_request": 0.0,
        "decayed_86400s_click": 0.0,
        "decayed_604800s_all": pytest.approx(2 ** (-1 / 168)),
        "decayed_604800s_request": 0.0,
        "decayed_604800s_click": 0.0,
    }


def test_decayed_counts_slot_bound() -> None:
    f = DecayedTypeCounts()
    slot = feed(f, [ev(float(i), f"t{i}") for i in range(30)] + [req(40.0), click(41.0)])
    assert len(slot) == 3 * (2 + 1)  # len(half_lives) * (len(types) + 1): other types are not kept


# -------------------------------------------------------------------------------------------- WindowCounts


def test_window_counts_bucket_boundary() -> None:
    f = WindowCounts(windows=(60.0,), buckets=6)  # 10 s buckets
    slot = feed(f, [ev(5.0), ev(12.0), ev(19.0)])
    assert slot == {"60": [[0.0, 1], [10.0, 2]]}
    assert f.values(slot, req(59.9)) == {"window_60s": 3.0}
    assert f.values(slot, req(60.0)) == {"window_60s": 2.0}  # bucket [0, 10) leaves at 0 + 60
    assert f.values(slot, req(70.0)) == {"window_60s": 0.0}
    assert f.values(None, req(70.0)) == {"window_60s": 0.0}


def test_window_counts_defaults() -> None:
    f = WindowCounts()
    slot = feed(f, [ev(1_000_000.0)])  # 5-minute buckets for the hour: bucket 3333 starts at 999_900
    assert slot["3600"] == [[999_900.0, 1]]
    # exactly one hour later the hour window counts buckets 3334..3345 only; the day window still has it
    assert f.values(slot, req(1_003_600.0)) == {"window_3600s": 0.0, "window_86400s": 1.0}
    assert f.values(slot, req(1_003_000.0)) == {"window_3600s": 1.0, "window_86400s": 1.0}
    many = feed(f, [ev(1_000_000.0 + 300 * i) for i in range(100)])
    assert len(many["3600"]) == 12 and len(many["86400"]) <= 12


# ------------------------------------------------------------------------------------------- TypeRecency


def test_type_recency_per_type_log_seconds() -> None:
    slot = feed(TypeRecency(), [ev(100.0), ev(90.0), click(150.0)])
    assert slot == {"view": 100.0, "click": 150.0}
    assert TypeRecency().values(slot, req(160.0)) == {
        "recency_click_log_secs": math.log(11.0),
        "recency_view_log_secs": math.log(61.0),
    }
    assert TypeRecency().values(None, req(160.0)) == {}


def test_type_recency_bounded_like_counts() -> None:
    slot = feed(TypeRecency(), [ev(float(i), f"t{i:02d}") for i in range(20)])
    assert len(slot) == MAX_TYPES + 1
    assert slot["other"] == 19.0


# -------------------------------------------------------------------------------------- ClickThroughRate


def test_ctr_prior_with_no_data_and_smoothing() -> None:
    f = ClickThroughRate()
    assert f.values(None, req(1.0)) == {"ctr_user": 0.05}
    events: list[Event] = [req(float(i)) for i in range(10)] + [click(20.0), click(21.0), click(22.0), ev(23.0)]
    slot = feed(f, events)
    assert slot == [3, 10]
    assert f.values(slot, req(30.0)) == {"ctr_user": pytest.approx(3.5 / 20)}  # (3 + 0.05*10) / (10 + 10)


def test_ctr_custom_prior() -> None:
    f = ClickThroughRate(prior_mean=0.2, prior_weight=5.0)
    assert f.values(None, req(1.0)) == {"ctr_user": 0.2}
    assert f.values([4, 5], req(1.0)) == {"ctr_user": 0.5}  # (4 + 1) / (5 + 5)
    assert f.params() == {"prior_mean": 0.2, "prior_weight": 5.0}


# ------------------------------------------------------------------------- RequestContext, CandidateAttributes


def test_request_context_one_hot_strings_numbers_pass_through() -> None:
    f = RequestContext()
    assert f.reads == frozenset()
    assert f.values(None, req(1.0, context={"device": "mobile", "hour": 13.0})) == {
        "ctx_device=mobile": 1.0,
        "ctx_hour": 13.0,
    }
    assert f.values(None, req(1.0)) == {}


def test_candidate_attributes() -> None:
    f = CandidateAttributes()
    r = req(1.0)
    assert f.values(None, r, Candidate("a", {"price": 100.0, "category": "shoes"}), 0) == {
        "cand_price": 100.0,
        "cand_category=shoes": 1.0,
        "cand_log_price": math.log(100.0),
        "cand_position": 0.0,
        "slot=0": 1.0,
    }
    assert f.values(None, r, Candidate("b", {"price": 1.0}), 3) == {
        "cand_price": 1.0, "cand_log_price": 0.0, "cand_position": 3.0, "slot=3": 1.0,
    }
    # no log of a price <= 0 or of a string price; no attributes: the position alone
    assert f.values(None, r, Candidate("c", {"price": 0.0}), 1) == {"cand_price": 0.0, "cand_position": 1.0,
                                                                    "slot=1": 1.0}
    assert f.values(None, r, Candidate("d", {"price": -3.0}), 1) == {"cand_price": -3.0, "cand_position": 1.0,
                                                                     "slot=1": 1.0}
    assert f.values(None, r, Candidate("e", {"price": "cheap"}), 2) == {"cand_price=cheap": 1.0,
                                                                         "cand_position": 2.0, "slot=2": 1.0}
    assert f.values(None, r, Candidate("f"), 4) == {"cand_position": 4.0, "slot=4": 1.0}
    # the one-hot of the position stops at MAX_SLOT: one weight for every later slot
    assert f.values(None, r, Candidate("g"), 99) == {"cand_position": 99.0, f"slot={MAX_SLOT}": 1.0}


# ---------------------------------------------------------------------------------------- ItemInteractions


def test_item_interactions_seen_count_log_secs() -> None:
    f = ItemInteractions()
    slot = feed(f, [ev(10.0, item="a"), ev(20.0, "add_to_cart", item="b"), click(30.0, "a"),
                    ev(35.0), req(36.0, "a", "b")])  # no item_id / a request: not items
    assert slot == {"a": [2, 30.0], "b": [1, 20.0]}
    r = req(40.0, "a", "b", "c")
    assert f.values(slot, r, Candidate("a"), 0) == {"item_seen": 1.0, "item_count": 2.0,
                                                   "item_log_secs_since": math.log(11.0)}
    assert f.values(slot, r, Candidate("b"), 1) == {"item_seen": 1.0, "item_count": 1.0,
                                                   "item_log_secs_since": math.log(21.0)}
    assert f.values(slot, r, Candidate("c"), 2) == {"item_seen": 0.0}
    assert f.values(None, r, Candidate("a"), 0) == {"item_seen": 0.0}


def test_item_interactions_bound_evicts_least_recent() -> None:
    f = ItemInteractions(max_items=2)
    slot = feed(f, [ev(10.0, item="a"), ev(20.0, item="b"), ev(30.0, item="a"), ev(40.0, item="c")])
    assert slot == {"a": [2, 30.0], "c": [1, 40.0]}  # b (last seen at 20) evicted
    assert f.values(slot, req(50.0), Candidate("b"), 0) == {"item_seen": 0.0}
    big = feed(ItemInteractions(), [ev(float(i), item=f"i{i}") for i in range(250)])
    assert len(big) == 100 and min(big) == "i150"


# --------------------------------------------------------------------------------------- AttributeAffinity


def test_attribute_affinity_share_and_ignored_events() -> None:
    f = AttributeAffinity()
    events: list[Event] = [
        ev(1.0, item="a", category="shoes"),
        ev(2.0, "add_to_cart", item="b", category="shoes"),
        ev(3.0, item="c", category="hats"),
        ev(4.0, item="d", category=7),  # not a string: ignored
        ev(5.0, item="e"),  # no category: ignored
        click(6.0, "a"),  # not an interaction: ignored
    ]
    slot = feed(f, events)
    assert slot == [3, {"shoes": 2, "hats": 1}]
    r = req(10.0)
    assert f.values(slot, r, Candidate("x", {"category": "shoes"}), 0) == {"affinity_category": 2 / 3}
    assert f.values(slot, r, Candidate("x", {"category": "hats"}), 0) == {"affinity_category": 1 / 3}
    assert f.values(slot, r, Candidate("x", {"category": "bags"}), 0) == {"affinity_category": 0.0}
    assert f.values(slot, r, Candidate("x"), 0) == {}
    assert f.values(slot, r, Candidate("x", {"category": 3.0}), 0) == {}
    assert f.values(None, r, Candidate("x", {"category": "shoes"}), 0) == {}


def test_attribute_affinity_bound_keeps_the_total() -> None:
    f = AttributeAffinity(attribute="brand", max_values=2)
    slot = feed(f, [ev(1.0, brand="x"), ev(2.0, brand="y"), ev(3.0, brand="z"), ev(4.0, brand="x")])
    assert slot == [4, {"x": 2, "y": 1}]  # z not tracked (bound), but it is in the total
    r = req(5.0)
    assert f.values(slot, r, Candidate("c", {"brand": "x"}), 0) == {"affinity_brand": 0.5}
    assert f.values(slot, r, Candidate("c", {"brand": "z"}), 0) == {"affinity_brand": 0.0}
    big = feed(AttributeAffinity(), [ev(float(i), category=f"c{i}") for i in range(100)])
    assert big[0] == 100 and len(big[1]) == 32


# --------------------------------------------------------------------------------------- default features


def test_default_features_full_vector() -> None:
    fs = FeatureSet.default()
    t0 = 1_000_000.0
    state: dict[str, Any] = {}
    fs.update(state, ev(t0, item="a", category="shoes"), position=0)
    r = req(t0 + HOUR, Candidate("a", {"price": 1.0, "category": "shoes"}), Candidate("b"),
            context={"device": "mobile"})
    user = {
        "activity_events": 1.0,
        "activity_log_secs_since_last": math.log(3601.0),
        "count_view": 1.0,
        "decayed_3600s_all": 0.5,
        "decayed_3600s_request": 0.0,
        "decayed_3600s_click": 0.0,
        "decayed_86400s_all": pytest.approx(2 ** (-1 / 24)),
        "decayed_86400s_request": 0.0,
        "decayed_86400s_click": 0.0,
        "decayed_604800s_all": pytest.approx(2 ** (-1 / 168)),
        "decayed_604800s_request": 0.0,
        "decayed_604800s_click": 0.0,
        "window_3600s": 0.0,
        "window_86400s": 1.0,
        "recency_view_log_secs": math.log(3601.0),
        "ctr_user": 0.05,
        "ctx_device=mobile": 1.0,
    }
    a, b = fs.vectors(state, r)
    assert a == {**user, "cand_price": 1.0, "cand_category=shoes": 1.0, "cand_log_price": 0.0,
                 "cand_position": 0.0, "slot=0": 1.0, "item_seen": 1.0, "item_count": 1.0,
                 "item_log_secs_since": math.log(3601.0), "item_did=view": 1.0, "affinity_category": 1.0,
                 "xid_3651": 1.0}
    assert b == {**user, "cand_position": 1.0, "slot=1": 1.0, "item_seen": 0.0, "xid_4089": 1.0}


# --------------------------------------------------------------------------------------------- FeatureSet


class Bumped(Activity):
    version = 2


class Reserved(UserFeature):
    name = "_ts"

    def values(self, slot: Any, request: Request) -> Vector:
        return {}


def test_featureset_refuses_duplicate_and_reserved_names() -> None:
    with pytest.raises(ValueError, match="declared twice: activity"):
        FeatureSet([Activity(), TypeCounts(), Bumped()])
    with pytest.raises(ValueError, match="reserved: _ts"):
        FeatureSet([Activity(), Reserved()])


def test_fingerprint_stable_and_sensitive() -> None:
    base = FeatureSet.default(user_ttl=100.0).fingerprint
    assert base.startswith("fs-") and len(base) == 3 + 16
    assert FeatureSet(default_features(), user_ttl=100.0).fingerprint == base
    assert FeatureSet.default(user_ttl=100.0).fingerprint == base
    changed = [
        FeatureSet.default(user_ttl=200.0),
        FeatureSet.default(),
        FeatureSet([DecayedTypeCounts(half_lives=(HOUR,)) if isinstance(f, DecayedTypeCounts) else f
                    for f in default_features()], user_ttl=100.0),
        FeatureSet([ClickThroughRate(prior_mean=0.1) if isinstance(f, ClickThroughRate) else f
                    for f in default_features()], user_ttl=100.0),
        FeatureSet([ItemInteractions(max_items=50) if isinstance(f, ItemInteractions) else f
                    for f in default_features()], user_ttl=100.0),
        FeatureSet([Bumped() if type(f) is Activity else f for f in default_features()], user_ttl=100.0),
    ]
    fingerprints = [fs.fingerprint for fs in changed]
    assert base not in fingerprints
    assert len(set(fingerprints)) == len(fingerprints)


def test_vectors_before_update_do_not_count_the_triggering_request() -> None:
    fs = FeatureSet([Activity(), ClickThroughRate(), TypeCounts()])
    state: dict[str, Any] = {}
    r1 = req(100.0, "a")
    assert fs.vectors(state, r1) == [{"activity_events": 0.0, "ctr_user": 0.05}]
    fs.update(state, r1, position=0)
    r2 = req(110.0, "a", "b")
    expected = {"activity_events": 1.0, "activity_log_secs_since_last": math.log(11.0),
                "ctr_user": pytest.approx(0.5 / 11), "count_request": 1.0}  # (0 + 0.5) / (1 + 10)
    assert fs.vectors(state, r2) == [expected, expected]


def test_update_bookkeeping_and_stateless_features_have_no_slot() -> None:
    fs = FeatureSet([Activity(), RequestContext(), CandidateAttributes(), ClickThroughRate()])
    state: dict[str, Any] = {}
    fs.update(state, ev(100.0), position=3)
    assert state == {"activity": [1, 100.0], "_ts": 100.0, "_pos": 3}  # ctr reads no views
    fs.update(state, req(90.0, context={"device": "tv"}), position=4)
    assert state == {"activity": [2, 100.0], "ctr": [0, 1], "_ts": 100.0, "_pos": 4}


def test_expire_exact_ttl_boundary() -> None:
    fs = FeatureSet([Activity()], user_ttl=100.0)
    state: dict[str, Any] = {}
    assert fs.expire(state, 1e9) is False  # nothing to forget
    fs.update(state, ev(1000.0), position=0)
    kept = dict(state)
    assert fs.expire(state, 1100.0) is False  # ts - last == ttl: kept
    assert state == kept
    assert fs.is_expired(state, 1100.0) is False
    assert fs.is_expired(state, 1100.5) is True
    assert fs.expire(state, 1100.5) is True
    assert state == {}


def test_expire_without_ttl_never_forgets() -> None:
    fs = FeatureSet([Activity()])
    state: dict[str, Any] = {}
    fs.update(state, ev(0.0), position=0)
    assert fs.expire(state, 1e10) is False and state["activity"] == [1, 0.0]
    assert fs.is_expired(state, 1e10) is False


def test_already_applied() -> None:
    fs = FeatureSet([Activity()])
    state: dict[str, Any] = {}
    assert fs.already_applied(state, 0) is False
    fs.update(state, ev(1.0), position=5)
    assert [fs.already_applied(state, p) for p in (0, 4, 5, 6, 100)] == [True, True, True, False, False]


def test_describe() -> None:
    fs = FeatureSet([Activity(), ItemInteractions(), CandidateAttributes()], user_ttl=50.0)
    state: dict[str, Any] = {}
    fs.update(state, ev(100.0, item="a"), position=0)
    assert fs.describe(state, 160.0, ["a", "b"]) == {
        "as_of": 160.0,
        "schema": fs.fingerprint,
        "features": {"activity_events": 1.0, "activity_log_secs_since_last": math.log(61.0)},
        "items": {
            "a": {"item_seen": 1.0, "item_count": 1.0, "item_log_secs_since": math.log(61.0), "cand_position": 0.0,
                  "slot=0": 1.0},
            "b": {"item_seen": 0.0, "cand_position": 1.0, "slot=1": 1.0},
        },
    }
    assert fs.describe(state, 160.0)["items"] == {}
    assert fs.describe({}, 5.0) == {"as_of": 5.0, "schema": fs.fingerprint,
                                    "features": {"activity_events": 0.0}, "items": {}}


# ------------------------------------------------------------------------------------------- size bound

_N = 24  # the longest JSON number orjson writes, e.g. -1.2345678901234567e-300
_TYPES = ["request", "click", "view", "add_to_cart", *(f"type{i:02d}" for i in range(36))]  # keys <= 11 chars
_ITEMS = [f"item{i:04d}" for i in range(2000)]  # 8 chars
_CATEGORIES = [f"cat{i:03d}" for i in range(100)]  # 6 chars


def _arr(*items: int) -> int:
    """Bytes of a JSON array whose items encode to the given lengths."""
    return 2 + sum(items) + max(0, len(items) - 1)


def _obj(n: int, key: int, value: int) -> int:
    """Bytes of a JSON object of at most ``n`` entries, keys of at most ``key`` chars, values of ``value``."""
    return 2 + n * (key + 3 + value) + max(0, n - 1)


def _state_bound() -> int:
    """The encoded state's bound from the per-feature bounds of the docstrings, for the defaults above."""
    slots = {
        "activity": _arr(_N, _N),
        "count": _obj(MAX_TYPES + 1, 11, _N),
        "decayed": _obj(3 * (2 + 1), len("604800:request"), _arr(_N, _N)),
        "window": _obj(2, len("86400"), _arr(*[_arr(_N, _N)] * 12)),
        "recency": _obj(MAX_TYPES + 1, 11, _N),
        "ctr": _arr(_N, _N),
        "item": _obj(100, 8, _arr(_N, _N)),
        "affinity": _arr(_N, _obj(32, 6, _N)),
        "_ts": _N,
        "_pos": _N,
    }
    return 2 + sum(len(k) + 3 + v for k, v in slots.items()) + len(slots) - 1


def _random_events(n: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    ts = 1_700_000_000.0
    out: list[Event] = []
    for i in range(n):
        ts += rng.uniform(0.0, 120.0)
        t = ts - rng.uniform(0.0, 60.0) if rng.random() < 0.1 else ts  # some late events
        type_ = rng.choice(_TYPES)
        item = rng.choice(_ITEMS)
        if type_ == "request":
            cands = tuple(Candidate(c, {"price": rng.uniform(1, 500), "category": rng.choice(_CATEGORIES)})
                          for c in rng.sample(_ITEMS, 3))
            out.append(Request(f"e{i}", "u1", t, type_, request_id=f"r{i}", candidates=cands,
                               context={"device": rng.choice(["a", "b"])}))
        elif type_ == "click":
            out.append(Click(f"e{i}", "u1", t, type_, request_id=f"r{i - 1}", item_id=item))
        else:
            category: Any = rng.choice(_CATEGORIES) if rng.random() < 0.9 else rng.randint(0, 9)
            out.append(Interaction(f"e{i}", "u1", t, type_, item_id=item, props={"category": category}))
    return out


def test_state_size_stays_under_the_documented_bound() -> None:
    fs = FeatureSet.default()
    state: dict[str, Any] = {}
    events = _random_events(10_000, seed=20240611)
    for position, event in enumerate(events):
        fs.update(state, event, position)
    blob = encode_state(state)
    bound = _state_bound()
    assert bound < 12_000  # the bound itself is small...
    assert len(blob) <= bound  # ...and holds after 10,000 events
    assert len({e.type for e in events}) == len(_TYPES)  # every type occurred: the type bounds were exercised
    assert len(state["count"]) == len(state["recency"]) == MAX_TYPES + 1
    assert len(state["item"]) == 100
    assert len(state["affinity"][1]) == 32
    assert all(len(b) <= 12 for b in state["window"].values())
    assert len(state["decayed"]) == 9
    assert state["activity"][0] == 10_000 and state["_pos"] == 9_999
    assert sum(state["count"].values()) == 10_000


def test_a_conversion_counts_and_records_its_item_when_it_names_one() -> None:
    fs = FeatureSet([Activity(), TypeCounts(), ItemInteractions()])
    state: dict[str, Any] = {}
    fs.update(state, Conversion("c1", "u1", 5.0, "conversion", request_id="r", item_id="a", value=3.0), 0)
    fs.update(state, Conversion("c2", "u1", 5.5, "conversion", value=1.0), 1)  # no item: nothing to record
    assert state["activity"] == [2, 5.5] and state["count"] == {"conversion": 2}
    x_a, x_b = fs.vectors(state, req(6.0, "a", "b"))
    assert (x_a["item_seen"], x_a["item_count"], x_b["item_seen"]) == (1.0, 1.0, 0.0)
