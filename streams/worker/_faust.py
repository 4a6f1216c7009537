"""Every use of faust's (and, through faust, aiokafka's) private internals, in one place.

The worker needs a few things faust does not offer publicly: make an event "current" so table reads and writes
go to its partition's store, iterate one partition's RocksDB, write a batch to the store and record its
changelog offset as persisted, and read the group member id of faust's consumer. Each is a small function here,
so the rest of the worker speaks to faust only through its public API and these names, and a faust or
aiokafka upgrade that moves an internal breaks one module (and ``tests/unit/test_adapters.py``, which checks
on the real classes that every internal used here still exists).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

from faust.streams import _current_event
from faust.types import TP, EventT

__all__ = [
    "FAUST_KEY_PREFIX",
    "app_tasks",
    "changelog_topic_name",
    "current_event",
    "mark_persisted",
    "member_id",
    "partition_rows",
    "store_delete",
    "store_put",
]

FAUST_KEY_PREFIX = b"__faust"
"""faust keeps its own bookkeeping (the persisted changelog offset) in the same RocksDB as the table's keys."""

@contextlib.contextmanager
def current_event(event: EventT) -> Iterator[None]:
    """Make ``event`` faust's current event, so table reads and writes go to its partition's store.

    faust's RocksDB store and changelog pick the partition of a table access from the current event; during
    a batch that would be the last event taken, whatever its partition.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def partition_rows(table: Any, partition: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every row the table stores for ``partition`` on this worker, faust's own keys left out
    (faust has no public per-partition iterator)."""
    db = table.data._db_for_partition(partition)
    return ((key, blob) for key, blob in db.items() if not key.startswith(FAUST_KEY_PREFIX))


def store_put(table: Any, key: bytes, value: bytes) -> None:
    """Write the table's store directly (no changelog record: the caller sends it); in the current event's partition."""
    table.data[key] = value


def store_delete(table: Any, key: bytes) -> bool:
    """Delete a key from the table's store directly; False when it was not stored."""
    store = table.data
    if key not in store:
        return False
    del store[key]
    return True


def changelog_topic_name(table: Any) -> str:
    return str(table.changelog_topic.get_topic_name())


def mark_persisted(table: Any, topic: str, partition: int, offset: int) -> None:
    """Record ``offset`` of the table's changelog partition as persisted, as faust's own changelog callback
    does, so a restart replays the changelog from there only."""
    table.data.set_persisted_offset(TP(topic, partition), offset)


def member_id(app: Any) -> str | None:
    """The group member id of a running faust app's consumer (faust does not expose it publicly)."""
    try:
        return str(app.consumer._thread._ensure_consumer()._coordinator.member_id)
    except AttributeError:
        return None


def app_tasks(app: Any) -> list[Any]:
    """The functions registered with ``@app.task`` (for tests: faust keeps them privately)."""
    return list(app._app_tasks)
