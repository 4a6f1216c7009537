"""Which items users engage with near each other in their own sequences: the counts Prod2Vec-style vectors
are factorised from (``models/itemvectors.py``).

Every event with an item (a view, an add-to-cart, a click, ...) pairs its item with each of the user's previous
``window`` distinct items; a pair counts once per event, in both directions. The counts are bounded, and every
bound is applied the same way whatever the input's timing, so a replay counts what a live learner counts:

- users: the ``max_users`` most recently active ones keep their window (least recently active forgotten first);
- items: at most ``max_items`` counted; past that, the least counted half is dropped (ties: the larger id),
  with every pair it was in;
- pairs: at most ``max_pairs``; past that, the pairs counted once are dropped, then the least counted half.

>>> counts = CoOccurrence(window=2)
>>> for user, item in [("u", "a"), ("u", "b"), ("u", "c"), ("v", "a"), ("v", "b")]:
...     counts.observe(user, item)
>>> counts.pair_count("a", "b"), counts.pair_count("b", "c"), counts.pair_count("a", "c"), counts.items["a"]
(2, 1, 1, 2)
>>> counts.observe("u", "c")  # the item already last in the window: nothing new to pair with
>>> counts.pair_count("b", "c")
1
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["CoOccurrence"]


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


@dataclass
class CoOccurrence:
    window: int = 5
    """Previous distinct items of the user each new item is paired with."""
    max_users: int = 100_000
    max_items: int = 20_000
    max_pairs: int = 1_000_000
    items: dict[str, int] = field(default_factory=dict)
    """Events per item."""
    pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    """Per unordered pair (smaller id first): the events that paired them."""
    _recent: OrderedDict[str, list[str]] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        for name in ("window", "max_users", "max_items", "max_pairs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")

    def observe(self, user_id: str, item_id: str) -> None:
        """Count one event of ``user_id`` on ``item_id`` (events in their input order)."""
        recent = self._recent.pop(user_id, None) or []
        self._recent[user_id] = recent  # most recently active last
        if len(self._recent) > self.max_users:
            self._recent.popitem(last=False)
        if recent and recent[-1] == item_id:
            return  # the same item again (a re-view, its click): no new neighbour, no new count
        self.items[item_id] = self.items.get(item_id, 0) + 1
        for other in recent:
            if other != item_id:
                key = _pair(item_id, other)
                self.pairs[key] = self.pairs.get(key, 0) + 1
        if item_id in recent:
            recent.remove(item_id)
        recent.append(item_id)
        if len(recent) > self.window:
            del recent[0]
        if len(self.items) > self.max_items:
            self._prune_items()
        if len(self.pairs) > self.max_pairs:
            self._prune_pairs()

    def pair_count(self, a: str, b: str) -> int:
        return self.pairs.get(_pair(a, b), 0)

    def top_items(self, n: int, min_count: int = 1) -> list[str]:
        """The ``n`` most counted items with at least ``min_count`` events (ties: the smaller id first)."""
        ranked = sorted((item for item, c in self.items.items() if c >= min_count),
                        key=lambda item: (-self.items[item], item))
        return ranked[:n]

    def _prune_items(self) -> None:
        kept = set(self.top_items(self.max_items // 2))
        self.items = {item: c for item, c in self.items.items() if item in kept}
        self.pairs = {p: c for p, c in self.pairs.items() if p[0] in kept and p[1] in kept}

    def _prune_pairs(self) -> None:
        self.pairs = {p: c for p, c in self.pairs.items() if c > 1}
        if len(self.pairs) > self.max_pairs // 2:
            ranked = sorted(self.pairs, key=lambda p: (-self.pairs[p], p))[: self.max_pairs // 2]
            self.pairs = {p: self.pairs[p] for p in ranked}
