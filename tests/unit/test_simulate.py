"""The simulator: deterministic, valid events, and a ground truth that can be recomputed from the stream."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections import Counter
from typing import Any

import orjson
import pytest

from models.metrics import mean_logloss
from streams.events import Click, Interaction, Request, decode_event
from streams.tools.simulate import (
    CLICK_DELAY_MAX_S,
    CLICK_DELAY_MIN_S,
    exact_auc,
    features,
    simulate,
)


@pytest.fixture(scope="module")
def run() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return simulate(users=500, events=20_000, seed=1)


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    a = simulate(users=50, events=3_000, seed=5)
    b = simulate(users=50, events=3_000, seed=5)
    assert orjson.dumps(a[0]) == orjson.dumps(b[0])
    assert a[1] == b[1]
    c = simulate(users=50, events=3_000, seed=6)
    assert c[0] != a[0]


def test_global_rng_is_neither_used_nor_disturbed() -> None:
    random.seed(123)
    expected = random.random()
    random.seed(123)
    simulate(users=10, events=500, seed=1)
    assert random.random() == expected


def test_every_event_decodes_and_the_stream_is_well_formed(run: tuple[list[dict[str, Any]], dict]) -> None:
    events, truth = run
    assert len(events) == 20_000
    decoded = [decode_event(orjson.dumps(e)) for e in events]
    assert all(not d.extra for d in decoded)
    ts = [d.ts for d in decoded]
    assert all(a <= b for a, b in itertools.pairwise(ts)), "event time never goes back"
    assert ts[0] >= 1_700_000_000.0
    assert len({d.event_id for d in decoded}) == len(decoded)
    counts = Counter(d.type for d in decoded)
    assert counts == truth["counts"]
    assert set(counts) == {"view", "add_to_cart", "request", "click"}

    requests = {d.request_id: d for d in decoded if isinstance(d, Request)}
    assert len(requests) == counts["request"]
    for r in requests.values():
        assert 3 <= len(r.candidates) <= 10
        for c in r.candidates:
            assert isinstance(c.attrs["category"], str) and c.attrs["category"].startswith("c")
            assert isinstance(c.attrs["price"], float) and c.attrs["price"] > 0
    per_pair: Counter[tuple[str, str]] = Counter()
    for d in decoded:
        if isinstance(d, Click):
            r = requests[d.request_id]
            assert r.user_id == d.user_id
            assert d.item_id in {c.item_id for c in r.candidates}
            assert CLICK_DELAY_MIN_S - 1e-6 <= d.ts - r.ts <= CLICK_DELAY_MAX_S + 1e-6  # << 1 h window
            per_pair[(d.request_id, d.item_id)] += 1
        if isinstance(d, Interaction):
            assert d.item_id is not None and isinstance(d.props["category"], str)
    assert max(per_pair.values()) == 1, "a candidate is clicked at most once"
    assert truth["oracle"]["n"] == sum(len(r.candidates) for r in requests.values())


def test_users_have_heavy_tailed_activity(run: tuple[list[dict[str, Any]], dict]) -> None:
    per_user = sorted(Counter(e["user_id"] for e in run[0]).values(), reverse=True)
    top_decile = sum(per_user[: len(per_user) // 10])
    assert top_decile > 0.3 * sum(per_user)
    assert len(per_user) > 300


def test_truth_numbers_are_in_range(run: tuple[list[dict[str, Any]], dict]) -> None:
    truth = run[1]
    assert 0.05 <= truth["click_rate"] <= 0.15
    assert 0.70 <= truth["oracle"]["auc"] <= 0.90
    # The oracle beats predicting the base rate everywhere.
    base = truth["click_rate"]
    base_logloss = -(base * math.log(base) + (1 - base) * math.log(1 - base))
    assert truth["oracle"]["logloss"] < base_logloss - 0.02
    assert truth["params"]["weights"]["viewed"] > 0 and truth["params"]["seed"] == 1


def test_truth_can_be_recomputed_from_the_stream_alone(run: tuple[list[dict[str, Any]], dict]) -> None:
    """Replaying the events with per-user history gives back the oracle: the inputs are observable."""
    events, truth = run
    params = truth["params"]
    views: Counter[str] = Counter()
    viewed: set[tuple[str, str]] = set()
    carted: set[tuple[str, str]] = set()
    category_views: Counter[tuple[str, str]] = Counter()
    style_views: Counter[tuple[str, int]] = Counter()
    effects, styles = params["item_effects"], params["styles"]
    pairs: dict[tuple[str, str], float] = {}
    clicked: set[tuple[str, str]] = set()
    for e in events:
        user = e["user_id"]
        if e["type"] == "request":
            for position, c in enumerate(e["candidates"]):
                x = {
                    "viewed": float((user, c["item_id"]) in viewed),
                    "carted": float((user, c["item_id"]) in carted),
                    "affinity": category_views[(user, c["category"])] / views[user] if views[user] else 0.0,
                    "price_z": (math.log(c["price"]) - params["price_mu"]) / params["price_sigma"],
                    "position": float(position),
                    "item_effect": effects[c["item_id"]],
                    "style_affinity": style_views[(user, styles[c["item_id"]])] / views[user] if views[user] else 0.0,
                }
                seen = ((user, c["item_id"]) in viewed, (user, c["item_id"]) in carted)
                assert x == features(views[user], *seen, category_views[(user, c["category"])], c["price"],
                                     position, effects[c["item_id"]], style_views[(user, styles[c["item_id"]])])
                z = params["bias"] + sum(w * x[name] for name, w in params["weights"].items())
                pairs[(e["request_id"], c["item_id"])] = 1 / (1 + math.exp(-z))
        elif e["type"] == "click":
            clicked.add((e["request_id"], e["item_id"]))
        elif e["type"] == "view":
            views[user] += 1
            viewed.add((user, e["item_id"]))
            category_views[(user, e["props"]["category"])] += 1
            style_views[(user, styles[e["item_id"]])] += 1
        elif e["type"] == "add_to_cart":
            carted.add((user, e["item_id"]))
    probs = list(pairs.values())
    labels = [int(k in clicked) for k in pairs]
    assert len(probs) == truth["oracle"]["n"]
    assert sum(labels) / len(labels) == pytest.approx(truth["click_rate"])
    # Not bit-exact: a different sigmoid formula rounds differently, which can split or merge near-ties.
    assert exact_auc(probs, labels) == pytest.approx(truth["oracle"]["auc"], abs=1e-6)
    assert mean_logloss(probs, labels) == pytest.approx(truth["oracle"]["logloss"], abs=1e-9)


def test_the_items_side_is_in_the_truth_and_can_be_turned_off() -> None:
    """Item effects and styles raise what the oracle can reach; without them the oracle knows less."""
    _, with_items = simulate(users=300, events=8_000, seed=4)
    _, without = simulate(users=300, events=8_000, seed=4, item_sigma=0.0, style_weight=0.0)
    effects = list(with_items["params"]["item_effects"].values())
    assert len(effects) == with_items["params"]["items"] and 0.4 < statistics.pstdev(effects) < 1.0
    assert set(without["params"]["item_effects"].values()) == {0.0}
    assert without["params"]["weights"]["style_affinity"] == 0.0
    assert with_items["oracle"]["auc"] > without["oracle"]["auc"] + 0.01


def test_oracle_is_learnable_on_a_smaller_run() -> None:
    _, truth = simulate(users=200, events=5_000, seed=3)
    assert truth["oracle"]["auc"] > 0.65
    assert 0.03 <= truth["click_rate"] <= 0.25


def test_exact_auc_matches_the_pairwise_definition() -> None:
    rng = random.Random(0)
    scores = [rng.choice([0.1, 0.2, 0.3, 0.4]) for _ in range(200)]  # many ties
    labels = [int(rng.random() < 0.3) for _ in range(200)]
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    pairwise = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))
    assert exact_auc(scores, labels) == pytest.approx(pairwise, abs=1e-12)
    assert exact_auc([0.1, 0.2], [1, 1]) is None


def test_start_ts_and_small_sizes() -> None:
    events, _ = simulate(users=1, events=40, seed=0, start_ts=1000.0)
    assert len(events) == 40 and all(e["ts"] >= 1000.0 for e in events)
    assert simulate(users=3, events=0, seed=0)[0] == []
    with pytest.raises(ValueError, match="users >= 1"):
        simulate(users=0, events=10, seed=0)


def test_no_click_is_cut_off_at_the_end() -> None:
    """Every realised label has its click in the stream, however small the event budget."""
    for events_n in (1_000, 1_001, 1_011, 1_017):
        events, truth = simulate(users=30, events=events_n, seed=11)
        assert len(events) == events_n
        clicks = sum(e["type"] == "click" for e in events)
        assert clicks == round(truth["click_rate"] * truth["oracle"]["n"]) > 0


def test_click_delay_sets_how_long_after_its_request_a_click_comes() -> None:
    """``--click-delay 1,8,30``: clicks seconds after the request (docs/learning.md measures on it); the default
    stream is untouched by the option existing (same draws, only the delays differ)."""
    events, truth = simulate(users=50, events=3_000, seed=5, click_delay=(1.0, 8.0, 30.0))
    default, _ = simulate(users=50, events=3_000, seed=5)
    requests = {e["request_id"]: e["ts"] for e in events if e["type"] == "request"}
    delays = [e["ts"] - requests[e["request_id"]] for e in events if e["type"] == "click"]
    assert delays and all(1.0 - 1e-6 <= d <= 30.0 + 1e-6 for d in delays)
    assert max(delays) > 20.0 and sum(delays) / len(delays) < 12.0  # 1 + Exp(8), capped at 30
    assert truth["params"]["click_delay_s"] == {"min": 1.0, "mean_extra": 8.0, "max": 30.0}
    assert [(e["ts"], e["user_id"], e["candidates"]) for e in events if e["type"] == "request"] == [
        (e["ts"], e["user_id"], e["candidates"]) for e in default if e["type"] == "request"]
    with pytest.raises(ValueError, match="click_delay"):
        simulate(users=5, events=10, seed=0, click_delay=(5.0, 8.0, 1.0))
