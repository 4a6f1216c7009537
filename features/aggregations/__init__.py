"""Per-user aggregation primitives, in event time, with JSON-serializable state.

Each aggregation is a small frozen dataclass holding its configuration. Its state lives in a *slot*: a plain
JSON value (floats, ints, lists, dicts with str keys, or ``None`` for "never updated") that the caller
stores in the user's state dict, which is written to RocksDB as orjson bytes. ``update(slot, ..., ts)``
returns the new slot and leaves the one given as it was (a failed event is undone by putting the old slots back,
``streams/core/statecache.py``); ``value(slot, ts)`` /
``lookup(slot, ...)`` are pure reads.
Only the events' ``ts`` is used, never the wall clock, so a replay reproduces the state byte for byte.

>>> import orjson
>>> dc, wc = DecayedCount(half_life=3600.0), WindowCount(window=3600.0, buckets=12)
>>> state = {}
>>> state["clicks_decayed"] = dc.update(state.get("clicks_decayed"), ts=1000.0)
>>> state["clicks_1h"] = wc.update(state.get("clicks_1h"), ts=1000.0)
>>> orjson.dumps(state)
b'{"clicks_decayed":[1.0,1000.0],"clicks_1h":[[900.0,1]]}'
"""

from features.aggregations.decayed_count import DecayedCount, DecayedCountSlot
from features.aggregations.item_history import ItemHistory, ItemHistorySlot
from features.aggregations.ratio import SmoothedRatio
from features.aggregations.recency import Recency, RecencySlot
from features.aggregations.window_count import WindowCount, WindowCountSlot

__all__ = [
    "DecayedCount",
    "DecayedCountSlot",
    "ItemHistory",
    "ItemHistorySlot",
    "Recency",
    "RecencySlot",
    "SmoothedRatio",
    "WindowCount",
    "WindowCountSlot",
]
