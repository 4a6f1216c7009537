"""Decoded user states and waiting requests of one input partition, kept across batches.

The processor reads and changes users' states as Python objects; the store and its changelog hold them as
bytes. Decoding a state (~30 µs for a few KB of JSON) for every batch a user appears in, and a waiting request
(its vectors, ~50 µs) at every label, was a quarter of the worker's time. So the objects stay here between
batches: each is decoded once, when first needed, and encoded once per checkpoint in which it changed.

The store stays the truth. :meth:`StateCache.dirty` gives what changed since the last checkpoint; once the
worker has written it, :meth:`StateCache.written` marks it clean, and clean entries beyond a bound are dropped
(oldest first) so memory stays bounded: a dropped entry is read from the store again when next needed. The
worker keeps one cache per partition it owns, and drops it when the partition is revoked, so a cache never
outlives the ownership that makes it current (another worker may change the store meanwhile).

>>> stored = {"u1": b'{"n":1}'}
>>> cache = StateCache(stored.get, max_clean=1)
>>> cache.get("u1")["n"] += 1
>>> cache.mark_dirty("u1")
>>> rows = cache.dirty()
>>> rows
[('u1', b'{"n":2}')]
>>> stored.update(rows)
>>> cache.written(rows)
>>> cache.dirty(), cache.get("u1")
([], {'n': 2})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from features.state import UserState, decode_state, encode_state

__all__ = ["PENDING_KEPT", "USERS_KEPT", "PendingCache", "StateCache"]

USERS_KEPT = 20_000
"""Clean user states kept decoded per partition (a typical state is ~0.5-5 KB of JSON, a few times that as
Python objects)."""
PENDING_KEPT = 4_000
"""Clean waiting requests kept decoded per partition (each holds its candidates' vectors: several KB)."""

Load = Callable[[str], bytes | None]


def _drop_oldest(values: dict[str, Any], keep: int, protected: set[str]) -> None:
    """Drop the oldest entries of ``values`` not in ``protected`` until at most ``keep`` are left."""
    excess = len(values) - keep
    if excess <= 0:
        return
    for key in [k for k in values if k not in protected][:excess]:
        del values[key]


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
        return [(rid, None if self._values[rid] is None else orjson.dumps(self._values[rid]))
                for rid in sorted(self._dirty)]

    def written(self) -> None:
        """Everything :meth:`dirty` gave is in the store: all clean; deleted and the oldest entries dropped."""
        self._dirty.clear()
        self._journal = None
        for request_id in [rid for rid, entry in self._values.items() if entry is None]:
            del self._values[request_id]  # deleted in the store too: a later read finds nothing there
        _drop_oldest(self._values, self._max_clean, self._dirty)


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

    def snapshot(self, user_id: str) -> bytes | None:
        """The user's state before an event, to :meth:`restore` if the event fails (pending requests too).

        A state not changed since the last checkpoint is its stored bytes: encoding it again would give the
        same bytes, so only a state an earlier event since then changed is encoded.
        """
        self.pending.begin()
        state = self.get(user_id)
        return encode_state(state) if user_id in self._dirty else self._stored[user_id]

    def restore(self, user_id: str, snapshot: bytes | None) -> None:
        """Put back a :meth:`snapshot`, undoing whatever a failed event did to the user's state."""
        self._states[user_id] = decode_state(snapshot)
        self.pending.rollback()

    def mark_dirty(self, user_id: str) -> None:
        self._dirty.add(user_id)

    def dirty(self) -> list[tuple[str, bytes]]:
        """(user_id, encoded state) of every changed user, in a stable order."""
        return [(user_id, encode_state(self._states[user_id])) for user_id in sorted(self._dirty)]

    def written(self, rows: Sequence[tuple[str, bytes]]) -> None:
        """The ``rows`` :meth:`dirty` gave (and the pending requests') are in the store: all clean again, and
        the oldest clean states beyond the bound dropped."""
        for user_id, blob in rows:
            self._stored[user_id] = blob
        self._dirty.clear()
        self.pending.written()
        if len(self._states) > self._max_clean:
            _drop_oldest(self._states, self._max_clean, self._dirty)
            for user_id in [u for u in self._stored if u not in self._states]:
                del self._stored[user_id]

    def forget(self, user_ids: Sequence[str]) -> None:
        """Drop users deleted from the store (expired) without a state write."""
        for user_id in user_ids:
            self._states.pop(user_id, None)
            self._stored.pop(user_id, None)
            self._dirty.discard(user_id)
