"""Decoded user states and waiting requests of one input partition, kept across batches.

The processor reads and changes users' states as Python objects; the store and its changelog hold them as
bytes. Decoding a state (~30 µs for a few KB of JSON) for every batch a user appears in, and a waiting request
(its vectors, ~50 µs) at every label, was a quarter of the worker's time. So the objects stay here between
batches: each is decoded once, when first needed, and encoded once per checkpoint in which it changed.

The store stays the truth. A checkpoint :meth:`~StateCache.take` s what changed since the last one (encoded,
and clean again from then on), under a sequence number; the worker may go on processing while those rows are
on their way to the store. Once checkpoint ``seq`` is written, :meth:`~StateCache.durable` lets the cache drop
clean entries beyond a bound (oldest first) so memory stays bounded; an entry taken by a checkpoint not yet
written is never dropped, since reading it back from the store would give its older bytes. The worker keeps
one cache per partition it owns, and drops it when the partition is revoked, so a cache never outlives the
ownership that makes it current (another worker may change the store meanwhile).

>>> stored = {"u1": b'{"n":1}'}
>>> cache = StateCache(stored.get, max_clean=0)
>>> cache.get("u1")["n"] += 1
>>> cache.mark_dirty("u1")
>>> rows = cache.take(seq=1)
>>> rows
[('u1', b'{"n":2}')]
>>> cache.durable(seq=0)  # checkpoint 1 is not written yet: u1 stays
>>> cache.get("u1")
{'n': 2}
>>> stored.update(rows)
>>> cache.durable(seq=1)  # now it may go, and is read from the store when needed again
>>> len(cache), cache.get("u1")
(0, {'n': 2})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from features.state import UserState, decode_state, encode_state
from streams.core.records import dumps

__all__ = ["PENDING_KEPT", "USERS_KEPT", "PendingCache", "StateCache"]

USERS_KEPT = 20_000
"""Clean user states kept decoded per partition (a typical state is ~0.5-5 KB of JSON, a few times that as
Python objects)."""
PENDING_KEPT = 4_000
"""Clean waiting requests kept decoded per partition (each holds its candidates' vectors: several KB)."""

Load = Callable[[str], bytes | None]


def _droppable(values: dict[str, Any], keep: int, dirty: set[str], taken: dict[str, int], seq: int) -> list[str]:
    """The oldest keys of ``values`` beyond ``keep`` that may be dropped once checkpoint ``seq`` is written:
    not changed since, and not taken by a later checkpoint."""
    excess = len(values) - keep
    if excess <= 0:
        return []
    return [k for k in values if k not in dirty and taken.get(k, -1) <= seq][:excess]


class PendingCache:
    """Requests waiting for labels, by request id: each read from the store once, written once per checkpoint.

    Entries are never changed in place, only replaced with :meth:`put`, so an event's changes can be rolled
    back (:meth:`begin`, :meth:`rollback`) by putting the previous objects back.
    """

    def __init__(self, load: Load, max_clean: int = PENDING_KEPT) -> None:
        self._load = load
        self._max_clean = max_clean
        self._values: dict[str, dict[str, Any] | None] = {}
        self._dirty: set[str] = set()
        self._taken: dict[str, int] = {}
        """The checkpoint that last took each entry."""
        self._journal: dict[str, tuple[bool, dict[str, Any] | None]] | None = None

    def get(self, request_id: str) -> dict[str, Any] | None:
        if request_id not in self._values:
            blob = self._load(request_id)
            self._values[request_id] = orjson.loads(blob) if blob else None
        return self._values[request_id]

    def put(self, request_id: str, entry: dict[str, Any] | None) -> None:
        """Store ``entry`` (a new object, not a changed one), or delete with ``None``."""
        if self._journal is not None and request_id not in self._journal:
            self._journal[request_id] = (request_id in self._dirty, self.get(request_id))
        self._values[request_id] = entry
        self._dirty.add(request_id)

    def begin(self) -> None:
        self._journal = {}

    def rollback(self) -> None:
        for request_id, (was_dirty, value) in (self._journal or {}).items():
            self._values[request_id] = value
            if not was_dirty:
                self._dirty.discard(request_id)
        self._journal = None

    def dirty(self) -> list[tuple[str, bytes | None]]:
        """(request_id, encoded entry, or ``None`` to delete) of every changed request, in a stable order."""
        return [(rid, None if self._values[rid] is None else dumps(self._values[rid])) for rid in sorted(self._dirty)]

    def take(self, seq: int) -> list[tuple[str, bytes | None]]:
        """:meth:`dirty`, for checkpoint ``seq`` to write: those entries are clean from now on."""
        rows = self.dirty()
        for request_id, _ in rows:
            self._taken[request_id] = seq
        self._dirty.clear()
        return rows

    def durable(self, seq: int) -> None:
        """Checkpoint ``seq`` is in the store: drop the entries it deleted, and the oldest beyond the bound."""
        dirty, taken = self._dirty, self._taken
        gone = [rid for rid, entry in self._values.items()
                if entry is None and rid not in dirty and taken.get(rid, -1) <= seq]  # a read now finds nothing
        for request_id in gone + _droppable(self._values, self._max_clean + len(gone), dirty, taken, seq):
            self._values.pop(request_id, None)
            taken.pop(request_id, None)


class StateCache:
    """User states: each read from the store once, written back once per checkpoint in which it changed;
    and the partition's :class:`PendingCache` (``load_pending`` reads a waiting request's stored bytes).

    ``load`` returns the stored bytes of a user (or ``None``); :meth:`dirty` gives what to write back.
    """

    def __init__(self, load: Load, load_pending: Load | None = None, max_clean: int = USERS_KEPT,
                 max_clean_pending: int = PENDING_KEPT) -> None:
        self._load = load
        self._max_clean = max_clean
        self._states: dict[str, UserState] = {}
        self._stored: dict[str, bytes | None] = {}
        """The bytes the store holds for each cached user: a clean state's snapshot, free."""
        self._dirty: set[str] = set()
        self._taken: dict[str, int] = {}
        """The checkpoint that last took each user's state."""
        self.pending = PendingCache(load_pending or (lambda request_id: None), max_clean_pending)

    def __len__(self) -> int:
        return len(self._states)

    def peek(self, user_id: str) -> UserState | None:
        """The user's state if it is cached (maybe changed since the last checkpoint), without reading the store."""
        return self._states.get(user_id)

    def get(self, user_id: str) -> UserState:
        state = self._states.get(user_id)
        if state is None:
            blob = self._stored[user_id] = self._load(user_id)
            state = self._states[user_id] = decode_state(blob)
        return state

    def snapshot(self, user_id: str) -> UserState:
        """The user's state before an event, to :meth:`restore` if the event fails (pending requests too).

        A shallow copy: the state's slots are replaced by an event, never changed in place (the feature
        contract, ``Feature.update``), so the copy keeps the old ones. Encoding the whole state instead was a
        tenth of the processor's time.
        """
        self.pending.begin()
        return dict(self.get(user_id))

    def restore(self, user_id: str, snapshot: UserState) -> None:
        """Put back a :meth:`snapshot`, undoing whatever a failed event did to the user's state."""
        self._states[user_id] = snapshot
        self.pending.rollback()

    def mark_dirty(self, user_id: str) -> None:
        self._dirty.add(user_id)

    def dirty(self) -> list[tuple[str, bytes]]:
        """(user_id, encoded state) of every changed user, in a stable order."""
        return [(user_id, encode_state(self._states[user_id])) for user_id in sorted(self._dirty)]

    def take(self, seq: int) -> list[tuple[str, bytes]]:
        """:meth:`dirty`, for checkpoint ``seq`` to write: those states are clean from now on (the pending
        requests' rows are taken separately, with ``pending.take``, to be written first)."""
        rows = self.dirty()
        for user_id, blob in rows:
            self._stored[user_id] = blob
            self._taken[user_id] = seq
        self._dirty.clear()
        return rows

    def durable(self, seq: int) -> None:
        """Checkpoint ``seq`` is in the store: the oldest clean states beyond the bound may go."""
        for user_id in _droppable(self._states, self._max_clean, self._dirty, self._taken, seq):
            del self._states[user_id]
            self._stored.pop(user_id, None)
            self._taken.pop(user_id, None)
        self.pending.durable(seq)

    def forget(self, user_ids: Sequence[str], seq: int) -> list[str]:
        """Drop users deleted from the store as expired by checkpoint ``seq``, unless an event changed them
        since (they are active again, and their next checkpoint writes them back); return those dropped."""
        dropped = [u for u in user_ids if u not in self._dirty and self._taken.get(u, -1) <= seq]
        for user_id in dropped:
            self._states.pop(user_id, None)
            self._stored.pop(user_id, None)
            self._taken.pop(user_id, None)
        return dropped
