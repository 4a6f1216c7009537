"""The event contract of DESIGN.md: bytes in, a typed record out, or an :class:`InvalidEvent` saying why not.

Every event has ``event_id``, ``user_id``, ``ts`` (event time, seconds since the epoch) and ``type``.
``request``, ``click`` and ``conversion`` have required fields of their own; any other type is an
:class:`Interaction`. Unknown fields are kept in ``extra``.

>>> decode_event(b'{"event_id":"e1","user_id":"u1","ts":10,"type":"request","request_id":"r1",'
...              b'"candidates":["a",{"item_id":"b","price":9.5}]}')  # doctest: +NORMALIZE_WHITESPACE
Request(event_id='e1', user_id='u1', ts=10.0, type='request', extra={}, request_id='r1',
        candidates=(Candidate(item_id='a', attrs={}), Candidate(item_id='b', attrs={'price': 9.5})),
        context={})
>>> decode_event(b'{"event_id":"e2","user_id":"u1","ts":10,"type":"click"}')
Traceback (most recent call last):
...
streams.events.InvalidEvent: click event e2: missing field 'request_id' (a click names the request it answers)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import orjson

Scalar: TypeAlias = str | float
FlatDict: TypeAlias = dict[str, Scalar]

# Seconds since the epoch stay below this until the year 5138; milliseconds since 1973 are above it.
_MAX_TS_SECONDS = 1e11


class InvalidEvent(ValueError):
    """Raised by :func:`decode_event`; the message says what was wrong and how to fix it."""

    def __init__(self, reason: str, code: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        """A short machine-readable class of the reason (``not_json``, ``invalid``, ``key_mismatch``)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: str
    attrs: FlatDict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    user_id: str
    ts: float
    type: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Request(Event):
    request_id: str = ""
    candidates: tuple[Candidate, ...] = ()
    context: FlatDict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Click(Event):
    request_id: str = ""
    item_id: str = ""


@dataclass(frozen=True, slots=True)
class Conversion(Event):
    request_id: str | None = None
    item_id: str | None = None
    value: float | None = None


@dataclass(frozen=True, slots=True)
class Interaction(Event):
    item_id: str | None = None
    props: dict[str, Any] = field(default_factory=dict)


_COMMON = ("event_id", "user_id", "ts", "type")
_OWN_FIELDS: dict[str, tuple[str, ...]] = {
    "request": ("request_id", "candidates", "context"),
    "click": ("request_id", "item_id"),
    "conversion": ("request_id", "item_id", "value"),
}
_INTERACTION_FIELDS = ("item_id", "props")
_KNOWN = {type_: frozenset((*_COMMON, *own)) for type_, own in _OWN_FIELDS.items()}
_KNOWN_INTERACTION = frozenset((*_COMMON, *_INTERACTION_FIELDS))
"""The fields that are not ``extra``, per type (any type not named is an interaction)."""


class _Reader:
    """Reads one decoded JSON object, raising :class:`InvalidEvent` with the event named in the message."""

    __slots__ = ("obj",)

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.obj = obj

    @property
    def label(self) -> str:
        """How messages name the event (only a failing event needs it: formatting it for each was a tenth of
        decoding)."""
        event_id = self.obj.get("event_id")
        type_ = self.obj.get("type")
        return f"{type_ if isinstance(type_, str) else 'event'} event" + (
            f" {event_id}" if isinstance(event_id, str) else ""
        )

    def fail(self, what: str) -> InvalidEvent:
        return InvalidEvent(f"{self.label}: {what}")

    def text(self, name: str, why: str = "", optional: bool = False) -> str | None:
        value = self.obj.get(name)
        if value is None:
            if optional:
                return None
            raise self.fail(f"missing field {name!r}" + (f" ({why})" if why else ""))
        if not isinstance(value, str) or not value:
            raise self.fail(f"field {name!r} must be a non-empty string, got {_show(value)}")
        return value

    def number(self, name: str, optional: bool = False) -> float | None:
        value = self.obj.get(name)
        if value is None:
            if optional:
                return None
            raise self.fail(f"missing field {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(f"field {name!r} must be a finite number, got {_show(value)}")
        return float(value)

    def flat(self, value: Any, where: str, skip: str | None = None) -> FlatDict:
        """``value`` (but its key ``skip``) as a flat dict: strings, and numbers as floats."""
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be an object of string or number values, got {_show(value)}")
        out: FlatDict = {}
        for k, v in value.items():
            # orjson gives exact types, so ``type`` checks suffice (and keep bools out: bool is not int here).
            kind = type(v)
            if kind is str:
                out[k] = v
            elif (kind is float or kind is int) and math.isfinite(v):
                out[k] = float(v)
            elif k != skip:
                raise self.fail(f"{where}[{k!r}] must be a string or a finite number, got {_show(v)}")
        if skip is not None:
            out.pop(skip, None)
        return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _candidates(r: _Reader, max_candidates: int) -> tuple[Candidate, ...]:
    raw = r.obj.get("candidates")
    if raw is None:
        raise r.fail("missing field 'candidates' (the items to score: ids or objects with 'item_id')")
    if not isinstance(raw, list) or not raw:
        raise r.fail(f"field 'candidates' must be a non-empty list, got {_show(raw)}")
    if len(raw) > max_candidates:
        raise r.fail(f"{len(raw)} candidates is more than the limit of {max_candidates} (max_candidates)")
    out: list[Candidate] = []
    seen: set[str] = set()
    for i, c in enumerate(raw):
        if isinstance(c, str) and c:
            cand = Candidate(c)
        elif isinstance(c, dict):
            item_id = c.get("item_id")
            if not isinstance(item_id, str) or not item_id:
                raise r.fail(f"candidates[{i}] needs a non-empty string 'item_id', got {_show(item_id)}")
            cand = Candidate(item_id, r.flat(c, f"candidates[{i}]", skip="item_id"))
        else:
            raise r.fail(f"candidates[{i}] must be an item id string or an object with 'item_id'")
        if cand.item_id in seen:
            raise r.fail(f"candidate {cand.item_id!r} appears twice; each item is scored once per request")
        seen.add(cand.item_id)
        out.append(cand)
    return tuple(out)


def decode_event(raw: bytes, *, key: bytes | None = None, max_candidates: int = 500) -> Event:
    """Decode and validate one event.

    ``key`` is the Kafka message key when the event came from a topic: it must be the ``user_id``, because
    the partition that owns a user owns its state. ``None`` skips that check (events read from a file).
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}", code="not_json") from None
    if not isinstance(obj, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {type(obj).__name__}", code="not_object")
    r = _Reader(obj)
    event_id = r.text("event_id")
    user_id = r.text("user_id")
    ts = r.number("ts")
    type_ = r.text("type")
    assert event_id is not None and user_id is not None and ts is not None and type_ is not None
    if ts < 0 or ts > _MAX_TS_SECONDS:
        hint = " (it looks like milliseconds: send seconds)" if ts > _MAX_TS_SECONDS else ""
        raise r.fail(f"field 'ts' must be seconds since the epoch, got {ts!r}{hint}")
    if key == b"":
        raise InvalidEvent(
            f"{r.label}: the message has no key; produce events with key=user_id so every event of a "
            "user reaches the partition that holds its state",
            code="key_missing",
        )
    if key is not None and key != user_id.encode():
        raise InvalidEvent(
            f"{r.label}: message key {key[:60]!r} is not the user_id {user_id!r}; produce events with "
            "key=user_id so every event of a user reaches the partition that holds its state",
            code="key_mismatch",
        )
    known = _KNOWN.get(type_, _KNOWN_INTERACTION)
    extra = {k: v for k, v in obj.items() if k not in known}
    if type_ == "request":
        context = obj.get("context")
        return Request(
            event_id, user_id, ts, type_, extra,
            request_id=r.text("request_id", "the id that scores, clicks and examples refer to") or "",
            candidates=_candidates(r, max_candidates),
            context=r.flat(context, "context") if context is not None else {},
        )
    if type_ == "click":
        return Click(
            event_id, user_id, ts, type_, extra,
            request_id=r.text("request_id", "a click names the request it answers") or "",
            item_id=r.text("item_id", "a click names the clicked candidate") or "",
        )
    if type_ == "conversion":
        return Conversion(
            event_id, user_id, ts, type_, extra,
            request_id=r.text("request_id", optional=True),
            item_id=r.text("item_id", optional=True),
            value=r.number("value", optional=True),
        )
    props = obj.get("props")
    if props is not None and not isinstance(props, dict):
        raise r.fail(f"field 'props' must be an object, got {_show(props)}")
    return Interaction(event_id, user_id, ts, type_, extra, item_id=r.text("item_id", optional=True),
                       props=props or {})


def encode_event(event: Event) -> bytes:
    """The JSON form of an event, as producers send it (the inverse of :func:`decode_event`)."""
    obj: dict[str, Any] = {"event_id": event.event_id, "user_id": event.user_id, "ts": event.ts,
                           "type": event.type}
    if isinstance(event, Request):
        obj["request_id"] = event.request_id
        obj["candidates"] = [{"item_id": c.item_id, **c.attrs} if c.attrs else c.item_id
                             for c in event.candidates]
        if event.context:
            obj["context"] = event.context
    elif isinstance(event, Click):
        obj["request_id"] = event.request_id
        obj["item_id"] = event.item_id
    elif isinstance(event, Conversion):
        for name in ("request_id", "item_id", "value"):
            if getattr(event, name) is not None:
                obj[name] = getattr(event, name)
    elif isinstance(event, Interaction):
        if event.item_id is not None:
            obj["item_id"] = event.item_id
        if event.props:
            obj["props"] = event.props
    obj.update(event.extra)
    return orjson.dumps(obj)
