"""Item-side aggregates shared by every worker: per item key, decayed impressions and labels, visible by event time.

What other users did with a candidate is not in any user's state, so it has its own path (``docs/items.md``):
every worker turns its requests and labels into **item deltas** (:func:`impression_delta`, :func:`label_delta`),
folds them into its own :class:`ItemStats` at once and writes them to the one-partition ``item-deltas`` topic;
every worker folds the other workers' deltas from that topic. A replay is one worker: the same code.

**The visibility rule** (event time only): a delta made by an event at time ``t`` is *visible* from
``t + lag``: an impression from its request's time, a label from the label's own time (a label is counted as
it arrives, within its attribution window). A vector for a request at time ``ts`` uses exactly the deltas
visible at ``ts`` (more precisely at the newest request time the table has scored, which is ``ts`` unless the
request is late). So a replay decides the same whatever its batch sizes, and live decides the same as long as
a delta reaches every worker within ``lag`` of event time; a later one is applied at once and counted as late.

Deltas become visible in the order ``(visible_at, delta id)``, not in arrival order, so the decayed sums are
the same floats on every worker. A delta id is applied once (a redelivered event makes the same delta).

Keys are strings: ``item=<id>`` for the candidate itself, and one per categorical attribute of the candidate
or of the request's context (``cand_category=c3``, ``ctx_channel=213``), plus :data:`ALL` for every impression:
the global rate that smooths the others. Their number is bounded by ``max_keys``: the least recently updated
key goes first.

>>> stats = ItemStats(lag=60.0, half_life=3600.0, max_keys=100)
>>> stats.apply(impression_delta("r1", 100.0, [["item=a", ALL]], 60.0))
>>> stats.apply(label_delta("c1", 130.0, ["item=a", ALL], 60.0))
>>> stats.advance(159.0); stats.lookup("item=a", 159.0)  # nothing visible before 160
(0.0, 0.0)
>>> stats.advance(160.0); stats.lookup("item=a", 160.0)  # the impression, not yet the label (visible at 190)
(1.0, 0.0)
>>> stats.advance(3790.0); [round(v, 3) for v in stats.lookup("item=a", 3790.0)]  # the label an hour later: halved
[0.497, 0.5]
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from streams.core.seen import SeenKeys

__all__ = ["ALL", "BadDelta", "ItemStats", "Rows", "decode_delta", "delta_origin", "encode_delta", "impression_delta",
           "impression_rows", "item_keys", "label_delta", "label_rows", "request_item_keys"]

ALL = "__all__"
"""The key every impression and label also counts under: the global rate, the prior of every smoothed rate."""
_LN2 = math.log(2.0)


def item_keys(item_id: str, x: Mapping[str, float]) -> list[str]:
    """The keys a candidate counts under: the item, then its categorical attributes and the request's context.

    Read from the candidate's logged vector (``cand_<name>=<value>`` and ``ctx_<name>=<value>`` one-hots), so
    a label, which only has the logged vector, counts under exactly the keys its impression did.

    The order is the item, the context's keys, then the candidate's: what :func:`request_item_keys` gives.

    >>> item_keys("a", {"cand_category=c3": 1.0, "cand_price": 9.0, "ctx_device=ios": 1.0, "item_seen": 0.0})
    ['item=a', 'ctx_device=ios', 'cand_category=c3']
    """
    ones = [k for k in x if "=" in k]
    return [f"item={item_id}", *(k for k in ones if k.startswith("ctx_")), *(k for k in ones if k.startswith("cand_"))]


def request_item_keys(item_ids: Sequence[str], context_x: Mapping[str, float],
                      attrs: Sequence[Mapping[str, object]]) -> list[list[str]]:
    """:func:`item_keys` of every candidate of a request, cheaper: the context's keys are found once (in
    ``context_x``, any candidate's vector) and each candidate's from its string attributes.

    >>> request_item_keys(["a", "b"], {"ctx_device=ios": 1.0, "cand_category=c3": 1.0}, [{"category": "c3"}, {}])
    [['item=a', 'ctx_device=ios', 'cand_category=c3'], ['item=b', 'ctx_device=ios']]
    """
    ctx = [k for k in context_x if "=" in k and k.startswith("ctx_")]
    return [[f"item={item_id}", *ctx, *[f"cand_{name}={value}" for name, value in a.items() if isinstance(value, str)]]
            for item_id, a in zip(item_ids, attrs, strict=True)]


Rows = list[tuple[str, float, float]]
"""A delta's ``(key, impressions, labels)``."""


def impression_rows(keys_per_candidate: Sequence[Sequence[str]]) -> Rows:
    """One impression per key of every candidate of a request (a key shared by candidates counts for each)."""
    counts: dict[str, float] = {}
    for keys in keys_per_candidate:
        for key in keys:
            counts[key] = counts.get(key, 0.0) + 1.0
    return [(k, n, 0.0) for k, n in counts.items()]


def label_rows(keys: Sequence[str]) -> Rows:
    """One label under each of ``keys``."""
    return [(k, 0.0, 1.0) for k in keys]


def encode_delta(delta_id: str, visible_at: float, rows: Rows, origin: str = "") -> bytes:
    """The ``item-deltas`` record; ``origin`` names the process that made it (its follower skips its own)."""
    return orjson.dumps({"id": delta_id, "v": visible_at, "d": [[k, int(i), int(n)] for k, i, n in rows],
                         "o": origin})


def impression_delta(delta_id: str, ts: float, keys_per_candidate: Sequence[Sequence[str]], lag: float,
                     origin: str = "") -> bytes:
    """The delta of a request at ``ts``: :func:`impression_rows`, visible at ``ts + lag``."""
    return encode_delta(delta_id, ts + lag, impression_rows(keys_per_candidate), origin)


def label_delta(delta_id: str, ts: float, keys: Sequence[str], lag: float, origin: str = "") -> bytes:
    """The delta of a label event at ``ts``: :func:`label_rows`, visible at ``ts + lag``."""
    return encode_delta(delta_id, ts + lag, label_rows(keys), origin)


def delta_origin(blob: bytes) -> str | None:
    """The ``origin`` of an encoded delta, or ``None`` if it has none (or is not a delta).

    >>> delta_origin(label_delta("c1", 10.0, ["item=a"], 5.0, origin="w1")), delta_origin(b"[]")
    ('w1', None)
    """
    try:
        record = orjson.loads(blob)
    except orjson.JSONDecodeError:
        return None
    origin = record.get("o") if isinstance(record, dict) else None
    return origin if isinstance(origin, str) else None


class BadDelta(ValueError):
    """A record of ``item-deltas`` that does not follow the contract: nothing was applied."""


def decode_delta(blob: bytes) -> tuple[str, float, Rows]:
    """(id, visible_at, [(key, impressions, labels)]) of an encoded delta; :class:`BadDelta` if malformed.

    >>> decode_delta(label_delta("c1", 10.0, ["item=a"], 5.0))
    ('c1', 15.0, [('item=a', 0.0, 1.0)])
    >>> decode_delta(b'{"id": "x"}')
    Traceback (most recent call last):
    ...
    features.itemstats.BadDelta: item delta: expected {"id": str, "v": number, "d": [[key, n, n], ...]}
    """
    try:
        record = orjson.loads(blob)
        delta_id, visible_at, rows = record["id"], float(record["v"]), record["d"]
        parsed = [(str(k), float(i), float(n)) for k, i, n in rows]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise BadDelta('item delta: expected {"id": str, "v": number, "d": [[key, n, n], ...]}') from None
    if not isinstance(delta_id, str) or not math.isfinite(visible_at):
        raise BadDelta('item delta: expected {"id": str, "v": number, "d": [[key, n, n], ...]}')
    return delta_id, visible_at, parsed


class ItemStats:
    """The table of item keys: ``key -> [impressions, labels, t]``, both decayed to ``t`` (event time).

    :meth:`apply` takes a delta (not yet visible: it waits); :meth:`advance` makes visible every delta whose
    ``visible_at`` is at most the given time; :meth:`lookup` reads a key decayed to a time. Memory: at most
    ``max_keys`` keys, about 100 bytes each, plus the deltas of the last ``lag`` seconds and ``max_seen`` ids.
    """

    def __init__(self, lag: float, half_life: float, max_keys: int, max_seen: int = 200_000) -> None:
        self.lag = lag
        self.half_life = half_life
        self.max_keys = max_keys
        self.now = -math.inf
        """The newest time :meth:`advance` was called with: every delta visible by then is applied."""
        self._rate = _LN2 / half_life
        self._table: OrderedDict[str, list[float]] = OrderedDict()
        self._waiting: list[tuple[float, str, list[tuple[str, float, float]]]] = []
        self._seen: SeenKeys[str] = SeenKeys(max_seen)
        self.applied = 0
        """Deltas applied (made visible)."""
        self.late = 0
        """Deltas that arrived after the table had moved past their ``visible_at``: applied at once."""
        self.lateness = 0.0
        """The largest such lateness, event-time seconds: the live visibility lag beyond ``lag``."""
        self.duplicates = 0
        self.evicted = 0

    def apply(self, blob: bytes) -> float | None:
        """Take one encoded delta (raises :class:`BadDelta` for a malformed one, having changed nothing).

        Returns how late it came, event-time seconds past its ``visible_at``, when it came late; else ``None``.
        """
        return self.add(*decode_delta(blob))

    def add(self, delta_id: str, visible_at: float, rows: Rows) -> float | None:
        """:meth:`apply` of a delta already decoded (or never encoded: the process's own)."""
        if not self._seen.add(delta_id):
            self.duplicates += 1
            return None
        if visible_at <= self.now:
            self.late += 1
            self.lateness = max(self.lateness, self.now - visible_at)
            self._fold(visible_at, rows)
            return self.now - visible_at
        heapq.heappush(self._waiting, (visible_at, delta_id, rows))
        return None

    def advance(self, ts: float) -> None:
        """Make visible every waiting delta with ``visible_at <= ts``, in ``(visible_at, id)`` order."""
        if ts <= self.now:
            return
        self.now = ts
        waiting = self._waiting
        while waiting and waiting[0][0] <= ts:
            visible_at, _, rows = heapq.heappop(waiting)
            self._fold(visible_at, rows)

    def _fold(self, at: float, rows: Iterable[tuple[str, float, float]]) -> None:
        table = self._table
        for key, impressions, labels in rows:
            entry = table.get(key)
            if entry is None:
                table[key] = [impressions, labels, at]
                if len(table) > self.max_keys:
                    table.popitem(last=False)
                    self.evicted += 1
                continue
            table.move_to_end(key)
            if at > entry[2]:
                decay = math.exp(-self._rate * (at - entry[2]))
                entry[0], entry[1], entry[2] = entry[0] * decay + impressions, entry[1] * decay + labels, at
            else:  # a late delta: counted at the entry's time (decaying it forward would favour it)
                decay = math.exp(-self._rate * (entry[2] - at))
                entry[0] += impressions * decay
                entry[1] += labels * decay
        self.applied += 1

    def lookup(self, key: str, ts: float) -> tuple[float, float]:
        """(impressions, labels) of ``key`` decayed to ``ts``; ``(0.0, 0.0)`` for a key never seen."""
        entry = self._table.get(key)
        if entry is None:
            return 0.0, 0.0
        if ts <= entry[2]:
            return entry[0], entry[1]
        decay = math.exp(-self._rate * (ts - entry[2]))
        return entry[0] * decay, entry[1] * decay

    def __len__(self) -> int:
        return len(self._table)

    def counters(self) -> dict[str, Any]:
        return {"item_keys": len(self._table), "item_deltas_applied": self.applied,
                "item_deltas_waiting": len(self._waiting), "item_deltas_late": self.late,
                "item_lateness_max_s": self.lateness, "item_deltas_duplicate": self.duplicates,
                "item_keys_evicted": self.evicted}
