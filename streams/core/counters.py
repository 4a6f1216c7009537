"""Operational counters of one process: events in, requests scored, dead letters by reason, ...

>>> c = Counters()
>>> c.inc("events_in"); c.inc("dead_letter", 2); c.inc("dead_letter.not_json", 2)
>>> c.snapshot()
{'dead_letter': 2, 'dead_letter.not_json': 2, 'events_in': 1}
"""

from __future__ import annotations

from collections import Counter


class Counters:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def inc(self, name: str, n: int = 1) -> None:
        self._counts[name] += n

    def get(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))
