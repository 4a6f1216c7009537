"""The state cache across checkpoints still on their way to the store (streams/core/statecache.py): nothing is
dropped that the store does not hold yet, and whatever is dropped reads back as it was."""

from __future__ import annotations

from streams.core.statecache import StateCache


def _changed(cache: StateCache, user_id: str, n: int) -> None:
    cache.get(user_id)["n"] = n
    cache.mark_dirty(user_id)


def test_a_state_taken_by_a_checkpoint_not_yet_written_is_kept_when_an_older_one_is_written() -> None:
    store: dict[str, bytes] = {}
    cache = StateCache(store.get, max_clean=0)
    _changed(cache, "u1", 1)
    first = cache.take(seq=1)
    _changed(cache, "u1", 2)
    second = cache.take(seq=2)
    store.update(first)
    cache.durable(seq=1)  # u1's newest bytes are checkpoint 2's, not in the store yet
    assert cache.get("u1") == {"n": 2}
    store.update(second)
    cache.durable(seq=2)
    assert len(cache) == 0
    assert cache.get("u1") == {"n": 2}  # read back from the store


def test_a_state_changed_after_its_checkpoint_is_kept_and_its_change_is_taken_next() -> None:
    store: dict[str, bytes] = {}
    cache = StateCache(store.get, max_clean=0)
    _changed(cache, "u1", 1)
    store.update(cache.take(seq=1))
    _changed(cache, "u1", 5)
    cache.durable(seq=1)
    assert cache.get("u1") == {"n": 5}
    assert cache.take(seq=2) == [("u1", b'{"n":5}')]


def test_a_deleted_waiting_request_is_forgotten_only_once_its_delete_is_written() -> None:
    stored = {"r1": b'{"x":1}'}
    cache = StateCache(lambda user_id: None, stored.get, max_clean_pending=10)
    assert cache.pending.get("r1") == {"x": 1}
    cache.pending.put("r1", None)
    assert cache.pending.take(seq=1) == [("r1", None)]
    cache.durable(seq=0)
    assert cache.pending.get("r1") is None  # still known as deleted: the store has not seen the delete
    del stored["r1"]
    cache.durable(seq=1)
    assert cache.pending.get("r1") is None


def test_expired_users_are_forgotten_unless_an_event_changed_them_since() -> None:
    store: dict[str, bytes] = {}
    cache = StateCache(store.get)
    for user_id in ("idle", "back", "later"):
        _changed(cache, user_id, 1)
    store.update(cache.take(seq=1))
    _changed(cache, "back", 2)  # an event since the checkpoint the sweep read
    _changed(cache, "later", 2)
    cache.take(seq=2)  # ... taken by a checkpoint not yet written
    _changed(cache, "back", 3)
    assert cache.forget(["idle", "back", "later"], seq=1) == ["idle"]
    assert cache.peek("idle") is None and cache.peek("back") == {"n": 3} and cache.peek("later") == {"n": 2}
