"""Per-user state: a JSON-serializable dict, stored as orjson bytes.

Each feature owns one slot of the dict, under its name. The bytes are what RocksDB and the changelog hold,
and what a replay must reproduce exactly, so the encoding is canonical (sorted keys).

>>> blob = encode_state({"b": 1, "a": [2.5, None]})
>>> blob
b'{"a":[2.5,null],"b":1}'
>>> decode_state(blob)
{'a': [2.5, None], 'b': 1}
>>> decode_state(None)
{}
"""

from __future__ import annotations

from typing import Any, TypeAlias

import orjson

UserState: TypeAlias = dict[str, Any]


def encode_state(state: UserState) -> bytes:
    return orjson.dumps(state, option=orjson.OPT_SORT_KEYS)


def decode_state(blob: bytes | None) -> UserState:
    if not blob:
        return {}
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise TypeError(f"user state must be stored as bytes, got {type(blob).__name__}: {blob!r:.80}")
    state = orjson.loads(blob)
    if not isinstance(state, dict):
        raise ValueError(f"user state must be a JSON object, got {type(state).__name__}")
    return state
