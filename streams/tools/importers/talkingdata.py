"""TalkingData ad clicks and app installs as events (see ``data/README.md``).

``user_id`` is the ``ip`` (the data has no user id). Every row is a ``request`` at ``click_time`` with one
candidate, the ``app``, and ``device``, ``os`` and ``channel`` as string context; a row with
``is_attributed == 1`` also gives a ``conversion`` (same request id, ``item_id`` = the app) at
``attributed_time``. Times are ``YYYY-MM-DD HH:MM:SS`` in UTC.

The file is not in time order, so the reader loads it whole and sorts all events by
``(ts, row, kind)`` — kind 0 for the request, 1 for the conversion — which is deterministic and puts
a request before a conversion at the same second. The request id is ``talkingdata:<row>:<ip>:<epoch>``
(row counts data rows from 1), unique even for duplicate rows.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "td.csv"
>>> _ = path.write_text(
...     "ip,app,device,os,channel,click_time,attributed_time,is_attributed\\n"
...     "9,12,1,13,497,2017-11-07 09:30:40,,0\\n"
...     "8,19,0,29,213,2017-11-07 09:30:38,2017-11-07 09:31:00,1\\n")
>>> for ev in read_talkingdata(path): print(ev)  # doctest: +NORMALIZE_WHITESPACE
{'event_id': 'talkingdata:2:8:1510047038:request', 'user_id': '8', 'ts': 1510047038.0, 'type': 'request',
 'request_id': 'talkingdata:2:8:1510047038', 'candidates': ['19'],
 'context': {'device': '0', 'os': '29', 'channel': '213'}}
{'event_id': 'talkingdata:1:9:1510047040:request', 'user_id': '9', 'ts': 1510047040.0, 'type': 'request',
 'request_id': 'talkingdata:1:9:1510047040', 'candidates': ['12'],
 'context': {'device': '1', 'os': '13', 'channel': '497'}}
{'event_id': 'talkingdata:2:8:1510047038:conversion', 'user_id': '8', 'ts': 1510047060.0,
 'type': 'conversion', 'request_id': 'talkingdata:2:8:1510047038', 'item_id': '19'}
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache

from streams.tools.importers import Event, Importer, PathLike, csv_rows

COLUMNS = ("ip", "app", "device", "os", "channel", "click_time", "attributed_time", "is_attributed")
CONTEXT_COLUMNS = ("device", "os", "channel")
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})")


def parse_time(text: str) -> float:
    """Seconds since the epoch of a ``YYYY-MM-DD HH:MM:SS`` UTC time; ``ValueError`` if malformed.

    >>> parse_time("2017-11-07 09:30:38")
    1510047038.0
    >>> parse_time("2017-13-07 09:30:38")
    Traceback (most recent call last):
    ...
    ValueError: '2017-13-07 09:30:38' is not a UTC time YYYY-MM-DD HH:MM:SS (month must be in 1..12)
    >>> parse_time("2017-11-07 24:00:00")
    Traceback (most recent call last):
    ...
    ValueError: '2017-11-07 24:00:00' is not a UTC time YYYY-MM-DD HH:MM:SS (time of day out of range)
    """
    m = _TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a UTC time YYYY-MM-DD HH:MM:SS")
    year, month, day, hour, minute, second = m.groups()
    h, mi, s = int(hour), int(minute), int(second)
    if h > 23 or mi > 59 or s > 59:
        raise ValueError(f"{text!r} is not a UTC time YYYY-MM-DD HH:MM:SS (time of day out of range)")
    try:
        midnight = _midnight(year, month, day)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a UTC time YYYY-MM-DD HH:MM:SS ({exc})") from None
    return midnight + (h * 3600 + mi * 60 + s)


@lru_cache(maxsize=4096)
def _midnight(year: str, month: str, day: str) -> float:
    return datetime(int(year), int(month), int(day), tzinfo=UTC).timestamp()


class TalkingDataReader(Importer):
    """Iterator of the events of one TalkingData CSV file (see the module docstring)."""

    source = "talkingdata"

    def _events(self) -> Iterator[Event]:
        keyed: list[tuple[float, int, int, Event]] = []
        for row_no, (line, row) in enumerate(csv_rows(self.path, COLUMNS), start=1):
            if row is None:
                self._skip("wrong number of fields", line)
                continue
            ip, app, device, os_, channel, click_time, attributed_time, is_attributed = row
            if not ip or not app:
                self._skip("empty ip or app", line)
                continue
            if is_attributed not in ("0", "1"):
                self._skip("is_attributed is neither 0 nor 1", line)
                continue
            try:
                ts = parse_time(click_time)
            except ValueError:
                self._skip("click_time is not a UTC time YYYY-MM-DD HH:MM:SS", line)
                continue
            request_id = f"talkingdata:{row_no}:{ip}:{ts:.0f}"
            context = {k: v for k, v in zip(CONTEXT_COLUMNS, (device, os_, channel), strict=True) if v}
            keyed.append((ts, row_no, 0, {
                "event_id": f"{request_id}:request", "user_id": ip, "ts": ts, "type": "request",
                "request_id": request_id, "candidates": [app], "context": context,
            }))
            if is_attributed == "0":
                if attributed_time:
                    self._note("attributed_time on a row with is_attributed 0: ignored", line)
                continue
            try:
                conversion_ts = parse_time(attributed_time)
            except ValueError:
                self._skip("is_attributed 1 without a valid attributed_time (request kept)", line)
                continue
            if conversion_ts < ts:
                self._note("attributed_time before click_time: conversion kept", line)
            keyed.append((conversion_ts, row_no, 1, {
                "event_id": f"{request_id}:conversion", "user_id": ip, "ts": conversion_ts,
                "type": "conversion", "request_id": request_id, "item_id": app,
            }))
        keyed.sort(key=lambda k: k[:3])
        for _, _, _, event in keyed:
            yield event


def read_talkingdata(path: PathLike) -> TalkingDataReader:
    """The events of a TalkingData CSV file (plain or ``.gz``), sorted by event time.

    The whole file is read (and sorted) when the first event is asked for. The result is an iterator
    of event dicts with ``skipped``/``notes`` counts of rows not (fully) converted, and ``report()``.
    Raises :class:`ValueError` if a required column is missing.
    """
    return TalkingDataReader(path)
