"""A synthetic event stream with known truth, for tests, benchmarks and demos.

Users with heavy-tailed activity and a taste for a few item categories browse a catalogue (``view``,
``add_to_cart``) and receive scoring requests of 3-10 candidates (``item_id``, ``price``,
``category``). Each candidate is clicked with the probability of a **ground-truth logistic model** whose
inputs the system can compute from the stream itself, as of just before the request:

- ``viewed``   — 1 if the user has a ``view`` of the item earlier in the stream, else 0;
- ``carted``   — 1 if the user has an ``add_to_cart`` of the item earlier in the stream, else 0;
- ``affinity`` — the share of the user's earlier views that were of the candidate's ``category``
  (0 with no views); ``view`` and ``add_to_cart`` events carry the item's category in ``props``;
- ``price_z``  — ``(ln(price) - price_mu) / price_sigma`` with the constants in ``truth["params"]``;
- ``position`` — the candidate's 0-based index in ``candidates``;
- ``item_effect`` — the item's own appeal, drawn once per item from ``N(0, item_sigma)``: seen by no single user,
  learnable only across users (item rates, learned item effects);
- ``style_affinity`` — the share of the user's earlier views whose item had the candidate's hidden ``style``
  (:data:`N_STYLES` of them, independent of the category). Users prefer a style and browse it more, so items of
  a style co-occur in users' sequences: item-to-item affinity that only the sequences reveal (Prod2Vec-style).

The last two are the items' side of the truth (``truth["params"]["item_effects"]``, ``["styles"]``), so its oracle
measures what cross-user item signals can add. ``item_sigma=0`` and ``style_weight=0`` turn the items' side off.

``p = sigmoid(bias + sum(weight[f] * f))``; every candidate is clicked independently with probability
``p``, so a request can get several clicks (one ``click`` event per clicked item), each 3 s to 15 min
after its request. ``truth["oracle"]`` scores the true ``p`` of every (request, candidate) pair against
the realised labels: the best any learner can do. Everything follows from ``seed``; no wall clock.

>>> events, truth = simulate(users=20, events=300, seed=7)
>>> len(events), events == simulate(users=20, events=300, seed=7)[0]
(300, True)
>>> sorted(truth), sorted(truth["oracle"])
(['click_rate', 'counts', 'oracle', 'params'], ['auc', 'logloss', 'n'])
>>> truth["counts"]["click"] == sum(e["type"] == "click" for e in events)
True
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from models.metrics import exact_auc, mean_logloss

Event = dict[str, Any]

WEIGHTS = {"viewed": 1.0, "carted": 0.9, "affinity": 1.8, "price_z": -0.45, "position": -0.12, "item_effect": 1.0,
           "style_affinity": 1.0}
"""Weights of the ground-truth logistic model (see the module docstring); ``style_weight`` replaces the last."""
BIAS = -3.7
ITEM_SIGMA = 0.7
"""Standard deviation of the items' own effects on the log-odds of a click."""
N_STYLES = 6
STYLE_P = 0.6
"""A fresh view in a preferred category is of the user's preferred style with this probability."""
PRICE_MU = math.log(80.0)
PRICE_SIGMA = 0.8

N_CATEGORIES = 12
ACTION_P = {"request": 0.30, "add_to_cart": 0.07}  # the rest are views
REVIEW_P = 0.30  # a view re-visits an item the user viewed before
TASTE_P = 0.85  # a fresh view is of one of the user's preferred categories
CANDIDATE_SOURCE_P = {"viewed": 0.25, "taste": 0.40}  # the rest: popular items of any category
MIN_CANDIDATES, MAX_CANDIDATES = 3, 10
MEAN_GAP_S = 2.0  # between consecutive non-click events, across all users
CLICK_DELAY_MIN_S, CLICK_DELAY_MEAN_S, CLICK_DELAY_MAX_S = 3.0, 40.0, 900.0
DEVICES = ("mobile", "desktop", "tablet")


@dataclass(frozen=True)
class _Item:
    item_id: str
    category: int
    price: float
    effect: float = 0.0
    style: int = 0


@dataclass
class _User:
    user_id: str
    device: str
    tastes: list[int]
    taste_cum: list[float]
    views: list[_Item] = field(default_factory=list)
    viewed: set[str] = field(default_factory=set)
    carted: set[str] = field(default_factory=set)
    category_views: Counter[int] = field(default_factory=Counter)
    style: int = 0
    style_views: Counter[int] = field(default_factory=Counter)


def sigmoid(z: float) -> float:
    """The logistic function, stable for large ``|z|``.

    >>> sigmoid(0.0), round(sigmoid(-800.0), 6), sigmoid(800.0)
    (0.5, 0.0, 1.0)
    """
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _weighted_index(rng: random.Random, cum: list[float]) -> int:
    return bisect.bisect_right(cum, rng.random() * cum[-1])


class _World:
    """Catalogue and users drawn from one RNG; tracks each user's history as the stream goes."""

    def __init__(self, users: int, rng: random.Random, item_sigma: float = 0.0) -> None:
        self.rng = rng
        per_category = max(10, users // 8)
        base_prices = [rng.uniform(math.log(25.0), math.log(250.0)) for _ in range(N_CATEGORIES)]
        self.items: list[_Item] = []
        self.by_category: list[list[_Item]] = []
        self.category_cum: list[list[float]] = []
        # Effects and styles come from an RNG of their own, so the catalogue's prices and the users are the same
        # draws whatever item_sigma is.
        item_rng = random.Random(rng.random())
        for c in range(N_CATEGORIES):
            items = [
                _Item(f"i{len(self.items) + k}", c, round(math.exp(base_prices[c] + rng.gauss(0, 0.35)), 2),
                      round(item_rng.gauss(0.0, item_sigma), 4) if item_sigma > 0 else 0.0,
                      item_rng.randrange(N_STYLES))
                for k in range(per_category)
            ]
            self.items.extend(items)
            self.by_category.append(items)
            popularity = [1.0 / (rank + 1) ** 1.1 for rank in range(per_category)]
            rng.shuffle(popularity)
            self.category_cum.append(list(itertools.accumulate(popularity)))
        self.users: list[_User] = []
        activity: list[float] = []
        for u in range(users):
            tastes = rng.sample(range(N_CATEGORIES), rng.randint(1, 3))
            weights = [rng.uniform(0.5, 2.0) for _ in tastes]
            device = DEVICES[_weighted_index(rng, [0.55, 0.9, 1.0])]
            self.users.append(_User(f"u{u}", device, tastes, list(itertools.accumulate(weights)),
                                    style=item_rng.randrange(N_STYLES)))
            activity.append(min(rng.paretovariate(1.2), 200.0))  # heavy-tailed, capped
        self.activity_cum = list(itertools.accumulate(activity))

    def pick_user(self) -> _User:
        return self.users[_weighted_index(self.rng, self.activity_cum)]

    def popular_item(self, category: int) -> _Item:
        return self.by_category[category][_weighted_index(self.rng, self.category_cum[category])]

    def browse(self, user: _User) -> _Item:
        """The item of a ``view``: a re-visit, a preferred category, or any category."""
        rng = self.rng
        if user.views and rng.random() < REVIEW_P:
            return user.views[rng.randrange(len(user.views))]
        if rng.random() < TASTE_P:
            category = user.tastes[_weighted_index(rng, user.taste_cum)]
            if rng.random() < STYLE_P:
                for _ in range(8):  # a popular item of the user's style, if one comes up in a few draws
                    item = self.popular_item(category)
                    if item.style == user.style:
                        return item
                return item
        else:
            category = rng.randrange(N_CATEGORIES)
        return self.popular_item(category)

    def candidates(self, user: _User) -> list[_Item]:
        rng = self.rng
        n = rng.randint(MIN_CANDIDATES, MAX_CANDIDATES)
        chosen: dict[str, _Item] = {}
        while len(chosen) < n:
            r = rng.random()
            if user.views and r < CANDIDATE_SOURCE_P["viewed"]:
                item = user.views[rng.randrange(len(user.views))]
            elif r < CANDIDATE_SOURCE_P["viewed"] + CANDIDATE_SOURCE_P["taste"]:
                item = self.popular_item(user.tastes[_weighted_index(rng, user.taste_cum)])
            else:
                item = self.popular_item(rng.randrange(N_CATEGORIES))
            chosen.setdefault(item.item_id, item)
        return list(chosen.values())


def features(user_views: int, viewed: bool, carted: bool, category_views: int, price: float,
             position: int, item_effect: float = 0.0, style_views: int = 0) -> dict[str, float]:
    """The ground-truth model's inputs for one candidate, from the user's history before the request.

    >>> features(4, True, False, 1, 80.0, 2, 0.5, 2)  # doctest: +NORMALIZE_WHITESPACE
    {'viewed': 1.0, 'carted': 0.0, 'affinity': 0.25, 'price_z': 0.0, 'position': 2.0, 'item_effect': 0.5,
     'style_affinity': 0.5}
    """
    return {
        "viewed": float(viewed),
        "carted": float(carted),
        "affinity": category_views / user_views if user_views else 0.0,
        "price_z": (math.log(price) - PRICE_MU) / PRICE_SIGMA,
        "position": float(position),
        "item_effect": item_effect,
        "style_affinity": style_views / user_views if user_views else 0.0,
    }


def click_probability(x: dict[str, float], weights: dict[str, float] | None = None) -> float:
    """The true click probability of a candidate with inputs ``x`` (see :func:`features`).

    >>> round(click_probability(features(0, False, False, 0, 80.0, 0)), 4)
    0.0241
    """
    return sigmoid(BIAS + sum(w * x[name] for name, w in (weights or WEIGHTS).items()))


def simulate(
    users: int, events: int, seed: int, *, start_ts: float = 1_700_000_000.0, item_sigma: float = ITEM_SIGMA,
    style_weight: float = WEIGHTS["style_affinity"],
    click_delay: tuple[float, float, float] = (CLICK_DELAY_MIN_S, CLICK_DELAY_MEAN_S, CLICK_DELAY_MAX_S),
) -> tuple[list[Event], dict[str, Any]]:
    """Generate exactly ``events`` events for ``users`` users, in event-time order, and their truth.

    Returns ``(events, truth)`` with ``truth = {"oracle": {"auc", "logloss", "n"}, "click_rate", "counts",
    "params"}``: the oracle metrics of the true probabilities over all ``n`` (request, candidate) pairs,
    the share of pairs clicked, the number of events of each type, and the generator's parameters.
    Near the end only views and carts are generated, so every request's clicks fit in ``events``.
    ``click_delay`` is ``(min, mean_extra, max)``: a click comes ``min`` plus an exponential of mean ``mean_extra``
    seconds after its request, at most ``max`` (``(1, 8, 30)``: clicks seconds after the request, to measure how
    much waiting out the attribution window costs, ``docs/learning.md``).
    """
    if users < 1 or events < 0:
        raise ValueError(f"need users >= 1 and events >= 0, got users={users}, events={events}")
    delay_min, delay_mean, delay_max = click_delay
    if not (0.0 <= delay_min <= delay_max and delay_mean > 0.0):
        raise ValueError(f"need 0 <= min <= max and mean_extra > 0 in click_delay, got {click_delay}")
    rng = random.Random(seed)
    world = _World(users, rng, item_sigma)
    weights = {**WEIGHTS, "style_affinity": style_weight}
    prefix = f"sim{seed}"
    out: list[Event] = []
    pending: list[tuple[float, int, Event]] = []  # clicks not yet due: (ts, sequence, event)
    probs: list[float] = []
    labels: list[int] = []
    counts: Counter[str] = Counter()
    t = start_ts
    requests = 0

    def emit(event: Event) -> None:
        event["event_id"] = f"{prefix}:e{len(out)}"
        out.append(event)
        counts[event["type"]] += 1

    while len(out) + len(pending) < events:
        t += rng.expovariate(1.0 / MEAN_GAP_S)
        ts = round(t, 3)
        while pending and pending[0][0] <= ts:
            emit(heapq.heappop(pending)[2])
        user = world.pick_user()
        room = events - len(out) - len(pending)
        r = rng.random()
        if r < ACTION_P["request"] and room >= 1 + MAX_CANDIDATES:
            request_id = f"{prefix}:r{requests}"
            requests += 1
            cands = world.candidates(user)
            emit({"event_id": "", "user_id": user.user_id, "ts": ts, "type": "request",
                  "request_id": request_id,
                  "candidates": [{"item_id": c.item_id, "price": c.price, "category": f"c{c.category}"}
                                 for c in cands],
                  "context": {"device": user.device}})
            n_views = len(user.views)
            for position, item in enumerate(cands):
                x = features(n_views, item.item_id in user.viewed, item.item_id in user.carted,
                             user.category_views[item.category], item.price, position, item.effect,
                             user.style_views[item.style])
                p = click_probability(x, weights)
                y = int(rng.random() < p)
                probs.append(p)
                labels.append(y)
                if y:
                    delay = delay_min + rng.expovariate(1.0 / delay_mean)
                    click_ts = round(ts + min(delay, delay_max), 3)
                    click: Event = {"event_id": "", "user_id": user.user_id, "ts": click_ts, "type": "click",
                                    "request_id": request_id, "item_id": item.item_id}
                    heapq.heappush(pending, (click_ts, len(probs), click))
        elif r < ACTION_P["request"] + ACTION_P["add_to_cart"] and user.views:
            item = user.views[rng.randrange(len(user.views))]
            user.carted.add(item.item_id)
            emit({"event_id": "", "user_id": user.user_id, "ts": ts, "type": "add_to_cart",
                  "item_id": item.item_id, "props": {"category": f"c{item.category}"}})
        else:
            item = world.browse(user)
            user.views.append(item)
            user.viewed.add(item.item_id)
            user.category_views[item.category] += 1
            user.style_views[item.style] += 1
            emit({"event_id": "", "user_id": user.user_id, "ts": ts, "type": "view", "item_id": item.item_id,
                  "props": {"category": f"c{item.category}"}})
    while pending:
        emit(heapq.heappop(pending)[2])

    truth: dict[str, Any] = {
        "oracle": {"auc": exact_auc(probs, labels), "logloss": mean_logloss(probs, labels), "n": len(probs)},
        "click_rate": sum(labels) / len(labels) if labels else math.nan,
        "counts": dict(sorted(counts.items())),
        "params": {
            "users": users, "events": events, "seed": seed, "start_ts": start_ts,
            "weights": weights, "bias": BIAS, "item_sigma": item_sigma,
            "item_effects": {i.item_id: i.effect for i in world.items},
            "styles": {i.item_id: i.style for i in world.items}, "price_mu": PRICE_MU, "price_sigma": PRICE_SIGMA,
            "items": len(world.items), "categories": N_CATEGORIES,
            "candidates": [MIN_CANDIDATES, MAX_CANDIDATES],
            "click_delay_s": {"min": delay_min, "mean_extra": delay_mean, "max": delay_max},
        },
    }
    return out, truth
