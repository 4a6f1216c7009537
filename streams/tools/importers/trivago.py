"""trivago RecSys Challenge 2019 sessions as events (see ``data/README.md``).

Each ``clickout item`` row becomes a ``request`` whose candidates are the shown ``impressions`` (in
list order, each with its ``price``) followed, at the same time, by a ``click`` on ``reference`` —
even when the clicked item was not among the impressions (counted in ``notes``). Every other row
becomes an interaction whose ``type`` is the slugged action type: the item actions
(``interaction item *``, ``search for item``) carry ``item_id``, the others carry the text reference
in ``props``. Every event also carries the row's ``session_id`` (kept as an unknown field).

Ids are derived from ``session_id`` and ``step``: ``trivago:<session>:<step>`` is the request id of a
clickout and the event id of an interaction; the request and its click get ``:request`` and ``:click``
appended. A (session, step) pair that occurs again (the public sample has three) gets ``#2``, ``#3``...

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_text(
...     "user_id,session_id,timestamp,step,action_type,reference,platform,city,device,"
...     "current_filters,impressions,prices\\n"
...     "U1,s1,100,1,search for destination,\\"Bonn, Germany\\",DE,\\"Bonn, Germany\\",mobile,,,\\n"
...     "U1,s1,105,2,clickout item,7,DE,\\"Bonn, Germany\\",mobile,,5|7,80|95\\n")
>>> reader = read_trivago(path)
>>> for ev in reader: print(ev)  # doctest: +NORMALIZE_WHITESPACE
{'event_id': 'trivago:s1:1', 'user_id': 'U1', 'ts': 100.0, 'type': 'search_for_destination',
 'props': {'reference': 'Bonn, Germany'}, 'session_id': 's1'}
{'event_id': 'trivago:s1:2:request', 'user_id': 'U1', 'ts': 105.0, 'type': 'request',
 'request_id': 'trivago:s1:2',
 'candidates': [{'item_id': '5', 'price': 80.0}, {'item_id': '7', 'price': 95.0}],
 'context': {'platform': 'DE', 'city': 'Bonn, Germany', 'device': 'mobile'}, 'session_id': 's1'}
{'event_id': 'trivago:s1:2:click', 'user_id': 'U1', 'ts': 105.0, 'type': 'click',
 'request_id': 'trivago:s1:2', 'item_id': '7', 'session_id': 's1'}
>>> reader.report()  # doctest: +ELLIPSIS
'trivago ...t.csv: 3 events, 0 rows skipped'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from functools import lru_cache

from streams.tools.importers import Event, Importer, PathLike, csv_rows

COLUMNS = ("user_id", "session_id", "timestamp", "step", "action_type", "reference", "platform", "city",
           "device", "impressions", "prices")
CLICKOUT = "clickout item"
ITEM_ACTIONS = frozenset({
    "interaction item image", "interaction item info", "interaction item rating", "interaction item deals",
    "search for item",
})
"""Action types whose ``reference`` is an item id."""
TEXT_ACTIONS = frozenset({
    "filter selection", "search for destination", "change of sort order", "search for poi",
})
"""Action types whose ``reference`` is text."""
CONTEXT_COLUMNS = ("platform", "city", "device")
_MAX_TS = 1e11  # the bound of streams.events: larger values are milliseconds, not seconds


@lru_cache(maxsize=256)
def slug(action_type: str) -> str:
    """The event ``type`` for a trivago action type.

    >>> slug("interaction item image"), slug("Change of sort-order ")
    ('interaction_item_image', 'change_of_sort_order')
    """
    return re.sub(r"[^a-z0-9]+", "_", action_type.strip().lower()).strip("_")


def _is_item_id(text: str) -> bool:
    return text.isascii() and text.isdigit()


class TrivagoReader(Importer):
    """Iterator of the events of one trivago CSV file (see the module docstring)."""

    source = "trivago"

    def _events(self) -> Iterator[Event]:
        seen_keys: dict[str, int] = {}
        last_ts = -math.inf
        for line, row in csv_rows(self.path, COLUMNS):
            if row is None:
                self._skip("wrong number of fields", line)
                continue
            user, session, ts_text, step, action, ref, platform, city, device, impressions, prices = row
            try:
                ts = float(ts_text)
            except ValueError:
                ts = math.nan
            if not (0 <= ts < _MAX_TS):
                self._skip("timestamp is not seconds since the epoch", line)
                continue
            if not user or not session or not step or not action:
                self._skip("empty user_id, session_id, step or action_type", line)
                continue
            if ts < last_ts:
                raise ValueError(
                    f"{self.path}:{line}: timestamp {ts_text} is earlier than the previous row's "
                    f"({last_ts:.0f}); sort the file by timestamp (the published sample is)"
                )
            key = f"{session}:{step}"
            n = seen_keys.get(key, 0) + 1
            seen_keys[key] = n
            if n > 1:
                key = f"{key}#{n}"
                self._note("(session_id, step) repeated: id suffixed", line)
            base = f"trivago:{key}"
            if action == CLICKOUT:
                context = {k: v for k, v in zip(CONTEXT_COLUMNS, (platform, city, device), strict=True) if v}
                events = self._clickout(line, base, user, session, ts, ref, impressions, prices, context)
                if events is None:
                    continue
                last_ts = ts
                yield from events
                continue
            event: Event = {"event_id": base, "user_id": user, "ts": ts, "type": slug(action)}
            if action in ITEM_ACTIONS and _is_item_id(ref):
                event["item_id"] = ref
            elif ref:
                if action in ITEM_ACTIONS:
                    self._note("item action whose reference is not an item id: kept in props", line)
                elif action not in TEXT_ACTIONS:
                    self._note("unknown action type: reference kept in props", line)
                event["props"] = {"reference": ref}
            event["session_id"] = session
            last_ts = ts
            yield event

    def _clickout(self, line: int, base: str, user: str, session: str, ts: float, ref: str,
                  impressions: str, prices: str, context: dict[str, str]) -> list[Event] | None:
        if not ref:
            self._skip("clickout without a clicked item (reference)", line)
            return None
        items = impressions.split("|") if impressions else []
        price_texts = prices.split("|") if prices else []
        if not items or not all(items):
            self._skip("clickout without impressions (or an empty item id among them)", line)
            return None
        if len(items) != len(price_texts):
            self._skip("clickout with a different number of impressions and prices", line)
            return None
        if len(set(items)) != len(items):
            self._skip("clickout showing the same item twice", line)
            return None
        try:
            price_values = [float(p) for p in price_texts]
        except ValueError:
            price_values = [math.nan]
        if not all(math.isfinite(p) for p in price_values):
            self._skip("clickout with a price that is not a number", line)
            return None
        if ref not in items:
            self._note("clicked item not among the impressions: click kept", line)
        request: Event = {
            "event_id": f"{base}:request", "user_id": user, "ts": ts, "type": "request", "request_id": base,
            "candidates": [{"item_id": i, "price": p} for i, p in zip(items, price_values, strict=True)],
            "context": context, "session_id": session,
        }
        click: Event = {
            "event_id": f"{base}:click", "user_id": user, "ts": ts, "type": "click", "request_id": base,
            "item_id": ref, "session_id": session,
        }
        return [request, click]


def read_trivago(path: PathLike) -> TrivagoReader:
    """The events of a trivago CSV file (plain or ``.gz``), in file order, which must be time order.

    The result is an iterator of event dicts; once exhausted, its ``skipped``/``notes`` say which rows
    could not be converted or were converted with a caveat, and ``report()`` says it in one line.
    Raises :class:`ValueError` if a required column is missing or a row goes back in time.
    """
    return TrivagoReader(path)
