"""The last keys seen, to skip redeliveries: one mechanism for the learner, its metrics and the item stats.

A set to look keys up and a FIFO to forget the oldest first. It pickles as its keys in the order they came,
not as the set: a set pickles in its iteration order, which hangs on the hash seed and on its history of adds
and discards, so an equal set rebuilt by unpickling can pickle in another order, and a restored learner would
publish bytes an uninterrupted one does not.

>>> seen = SeenKeys(2)
>>> seen.add("a"), seen.add("a"), seen.add("b"), seen.add("c")
(True, False, True, True)
>>> "a" in seen, list(seen), len(seen)
(False, ['b', 'c'], 2)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["SeenKeys"]

K = TypeVar("K", bound=Hashable)


class SeenKeys(Generic[K]):
    """The last ``capacity`` distinct keys added, oldest first. ``capacity`` may be raised later."""

    __slots__ = ("_order", "_set", "capacity")

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"max_seen must be an int >= 1, got {capacity!r}")
        self.capacity = capacity
        self._set: set[K] = set()
        self._order: deque[K] = deque()

    def __contains__(self, key: object) -> bool:
        return key in self._set

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[K]:
        """The keys in the order they were first added."""
        return iter(self._order)

    def add(self, key: K) -> bool:
        """Remember ``key`` (forgetting the oldest beyond ``capacity``); False if it was already remembered."""
        if key in self._set:
            return False
        self._set.add(key)
        self._order.append(key)
        while len(self._order) > self.capacity:
            self._set.discard(self._order.popleft())
        return True

    def __getstate__(self) -> tuple[int, list[K]]:
        return self.capacity, list(self._order)

    def __setstate__(self, state: tuple[int, list[K]]) -> None:
        self.capacity, keys = state
        self._order = deque(keys)
        self._set = set(keys)

    def __repr__(self) -> str:
        return f"SeenKeys({self.capacity}, {len(self)} remembered)"


