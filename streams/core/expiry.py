"""Forgetting inactive users, so per-user state does not grow forever.

Expiry is defined by each user's own event times: an event more than ``user_ttl`` after the user's previous
one finds the state forgotten (``FeatureSet.expire``, applied when the state is read; replays do the same).
That alone never frees the disk of users who do not come back, so each partition is also swept: whenever its
event time has advanced ``every`` seconds since the last sweep, users idle for longer than ``user_ttl`` plus
the allowed lateness before the partition's newest event time are deleted (with a changelog tombstone).
The lateness margin keeps the sweep invisible: any event still within the allowed lateness would have found
such a user expired anyway.

>>> sweeper = ExpirySweeper(every=3600.0)
>>> sweeper.due(partition=0, event_time=1000.0), sweeper.due(0, 4000.0), sweeper.due(0, 4700.0)
(False, False, True)
"""

from __future__ import annotations

from collections.abc import Iterable

from features.featureset import FeatureSet
from features.state import decode_state


class ExpirySweeper:
    def __init__(self, every: float) -> None:
        self.every = every
        self._next: dict[int, float] = {}

    def due(self, partition: int, event_time: float) -> bool:
        """Whether ``partition`` should be swept now; the first event time seen starts its clock."""
        next_sweep = self._next.setdefault(partition, event_time + self.every)
        if event_time < next_sweep:
            return False
        self._next[partition] = event_time + self.every
        return True


def expired_users(items: Iterable[tuple[bytes, bytes]], features: FeatureSet, horizon: float) -> list[bytes]:
    """Keys of the users whose state says they were idle for longer than the TTL before ``horizon``.

    ``items`` are users' states only: the worker leaves faust's own bookkeeping keys out
    (``streams/worker/_faust.py``, ``partition_rows``).

    >>> from features.state import encode_state
    >>> fs = FeatureSet([], user_ttl=100.0)
    >>> items = [(b"old", encode_state({"_ts": 10.0})), (b"new", encode_state({"_ts": 150.0}))]
    >>> expired_users(items, fs, horizon=200.0)
    [b'old']
    """
    return [key for key, blob in items if features.is_expired(decode_state(blob), horizon)]
