"""The event contract: every type decodes into its record, every refusal says what to fix, nothing else escapes."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.events import (
    Candidate,
    Click,
    Conversion,
    Event,
    Interaction,
    InvalidEvent,
    Request,
    decode_event,
    encode_event,
)

BASE: dict[str, Any] = {"event_id": "e1", "user_id": "u1", "ts": 1_700_000_000, "type": "view"}


def raw(**fields: Any) -> bytes:
    """An event's bytes: BASE updated with ``fields``; a value of ``...`` removes the field."""
    obj = {**BASE, **fields}
    return orjson.dumps({k: v for k, v in obj.items() if v is not ...})


def refusal(data: bytes, **kwargs: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        decode_event(data, **kwargs)
    assert str(info.value) == info.value.reason
    return info.value


# --- every type decodes into its record ----------------------------------------------------------------------


def test_request_with_string_and_object_candidates_context_and_extra() -> None:
    candidates = ["a", {"item_id": "b", "price": 9, "cat": "x"}]
    event = decode_event(raw(type="request", request_id="r1", candidates=candidates,
                             context={"page": "home", "hour": 13}, campaign="spring"))
    assert event == Request(
        event_id="e1", user_id="u1", ts=1_700_000_000.0, type="request", extra={"campaign": "spring"},
        request_id="r1",
        candidates=(Candidate("a", {}), Candidate("b", {"price": 9.0, "cat": "x"})),
        context={"page": "home", "hour": 13.0},
    )
    assert isinstance(event, Request)
    assert type(event.ts) is float
    assert type(event.candidates[1].attrs["price"]) is float
    assert type(event.context["hour"]) is float


def test_request_defaults_context_to_empty_and_accepts_null_context() -> None:
    for data in (raw(type="request", request_id="r1", candidates=["a"]),
                 raw(type="request", request_id="r1", candidates=["a"], context=None)):
        event = decode_event(data)
        assert isinstance(event, Request)
        assert event.context == {}
        assert event.extra == {}
        assert event.candidates == (Candidate("a"),)


def test_click() -> None:
    event = decode_event(raw(type="click", request_id="r1", item_id="b", ts=12.5, pos=2))
    assert event == Click(event_id="e1", user_id="u1", ts=12.5, type="click", extra={"pos": 2},
                          request_id="r1", item_id="b")


def test_conversion_with_all_fields_and_with_none() -> None:
    full = decode_event(raw(type="conversion", request_id="r1", item_id="b", value=30, currency="EUR"))
    assert full == Conversion(event_id="e1", user_id="u1", ts=1_700_000_000.0, type="conversion",
                              extra={"currency": "EUR"}, request_id="r1", item_id="b", value=30.0)
    assert isinstance(full, Conversion)
    assert type(full.value) is float
    bare = decode_event(raw(type="conversion"))
    assert bare == Conversion(event_id="e1", user_id="u1", ts=1_700_000_000.0, type="conversion")
    assert isinstance(bare, Conversion)
    assert (bare.request_id, bare.item_id, bare.value, bare.extra) == (None, None, None, {})


def test_any_other_type_is_an_interaction() -> None:
    event = decode_event(raw(type="add_to_cart", item_id="i9", props={"qty": 2, "tags": ["a"], "x": {"y": None}},
                             request_id="r1"))
    # request_id is not a field of an interaction, so it is kept in extra; props may nest.
    assert event == Interaction(event_id="e1", user_id="u1", ts=1_700_000_000.0, type="add_to_cart",
                                extra={"request_id": "r1"}, item_id="i9",
                                props={"qty": 2, "tags": ["a"], "x": {"y": None}})
    bare = decode_event(raw())
    assert bare == Interaction(event_id="e1", user_id="u1", ts=1_700_000_000.0, type="view")
    assert isinstance(bare, Interaction)
    assert (bare.item_id, bare.props, bare.extra) == (None, {}, {})


def test_unknown_fields_of_every_type_are_kept_in_extra() -> None:
    nested = {"a": [1, {"b": None}], "c": True}
    cases: dict[str, dict[str, Any]] = {
        "request": {"request_id": "r1", "candidates": ["a"]},
        "click": {"request_id": "r1", "item_id": "a"},
        "conversion": {},
        "view": {},
    }
    for type_, own in cases.items():
        event = decode_event(raw(type=type_, meta=nested, n=3, **own))
        assert event.extra == {"meta": nested, "n": 3}, type_


def test_ts_bounds_are_inclusive_and_floats_pass() -> None:
    assert decode_event(raw(ts=0)).ts == 0.0
    assert decode_event(raw(ts=1e11)).ts == 1e11
    assert decode_event(raw(ts=1_700_000_000.123)).ts == 1_700_000_000.123


def test_matching_key_passes() -> None:
    assert decode_event(raw(user_id="ü-1"), key="ü-1".encode()).user_id == "ü-1"


# --- every refusal names the field and says how to fix it -----------------------------------------------------


@pytest.mark.parametrize("name", ["event_id", "user_id", "type"])
def test_missing_or_ill_typed_text_fields(name: str) -> None:
    assert f"missing field {name!r}" in refusal(raw(**{name: ...})).reason
    assert f"missing field {name!r}" in refusal(raw(**{name: None})).reason
    for bad in (5, "", ["x"], {"a": "b"}, True):
        reason = refusal(raw(**{name: bad})).reason
        assert f"field {name!r} must be a non-empty string, got {bad!r}" in reason


def test_missing_and_ill_typed_ts() -> None:
    assert refusal(raw(ts=...)).reason == "view event e1: missing field 'ts'"
    assert refusal(raw(ts="1700000000")).reason == (
        "view event e1: field 'ts' must be a finite number, got '1700000000'")
    assert refusal(raw(ts=[1])).reason == "view event e1: field 'ts' must be a finite number, got [1]"


def test_bool_ts_is_not_a_number() -> None:
    assert refusal(raw(ts=True)).reason == "view event e1: field 'ts' must be a finite number, got True"
    assert refusal(raw(ts=False)).reason == "view event e1: field 'ts' must be a finite number, got False"


def test_ts_in_milliseconds_says_send_seconds() -> None:
    reason = refusal(raw(ts=1_700_000_000_000)).reason
    assert reason == ("view event e1: field 'ts' must be seconds since the epoch, got 1700000000000.0 "
                      "(it looks like milliseconds: send seconds)")


def test_negative_ts() -> None:
    reason = refusal(raw(ts=-1)).reason
    assert reason == "view event e1: field 'ts' must be seconds since the epoch, got -1.0"
    assert "milliseconds" not in reason


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_nan_and_infinite_ts_are_refused(literal: bytes) -> None:
    # JSON has no NaN or infinity: orjson refuses the literals, and numbers that overflow a double.
    data = b'{"event_id":"e1","user_id":"u1","type":"view","ts":' + literal + b"}"
    err = refusal(data)
    assert err.code == "not_json"
    assert err.reason.startswith("not valid JSON: ")


def test_the_label_names_the_type_and_event_when_known() -> None:
    assert refusal(raw(event_id=..., type=7)).reason == "event event: missing field 'event_id'"
    assert refusal(raw(type=7)).reason == "event event e1: field 'type' must be a non-empty string, got 7"
    assert refusal(raw(user_id=...)).reason == "view event e1: missing field 'user_id'"


def test_not_json_and_not_an_object() -> None:
    assert refusal(b"{oops").code == "not_json"
    assert refusal(b"").code == "not_json"
    for data, kind in ((b"[1, 2]", "list"), (b'"x"', "str"), (b"3", "int"), (b"null", "NoneType")):
        err = refusal(data)
        assert err.code == "not_object"
        assert err.reason == f"an event must be a JSON object, got {kind}"


def test_request_without_request_id_or_candidates() -> None:
    assert refusal(raw(type="request", candidates=["a"])).reason == (
        "request event e1: missing field 'request_id' (the id that scores, clicks and examples refer to)")
    assert refusal(raw(type="request", request_id="r1")).reason == (
        "request event e1: missing field 'candidates' (the items to score: ids or objects with 'item_id')")


@pytest.mark.parametrize("bad", [[], "a", {"item_id": "a"}, 3])
def test_empty_or_non_list_candidates(bad: Any) -> None:
    assert refusal(raw(type="request", request_id="r1", candidates=bad)).reason == (
        f"request event e1: field 'candidates' must be a non-empty list, got {bad!r}")


def test_too_many_candidates_names_the_limit() -> None:
    data = raw(type="request", request_id="r1", candidates=["a", "b", "c"])
    assert refusal(data, max_candidates=2).reason == (
        "request event e1: 3 candidates is more than the limit of 2 (max_candidates)")
    assert len(decode_event(data, max_candidates=3).candidates) == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize("candidates", [["a", "b", "a"], ["a", {"item_id": "a", "price": 1}]])
def test_duplicate_candidate_ids(candidates: list[Any]) -> None:
    assert refusal(raw(type="request", request_id="r1", candidates=candidates)).reason == (
        "request event e1: candidate 'a' appears twice; each item is scored once per request")


def test_ill_formed_candidates() -> None:
    def reason(candidates: list[Any]) -> str:
        return refusal(raw(type="request", request_id="r1", candidates=candidates)).reason

    assert reason(["a", 5]) == "request event e1: candidates[1] must be an item id string or an object with 'item_id'"
    assert reason([""]) == "request event e1: candidates[0] must be an item id string or an object with 'item_id'"
    assert reason([None]) == "request event e1: candidates[0] must be an item id string or an object with 'item_id'"
    assert reason([{"price": 1}]) == "request event e1: candidates[0] needs a non-empty string 'item_id', got None"
    assert reason([{"item_id": 7}]) == "request event e1: candidates[0] needs a non-empty string 'item_id', got 7"


@pytest.mark.parametrize("value", [[1], {"a": 1}, True, None])
def test_nested_or_non_scalar_attribute_values(value: Any) -> None:
    reason = refusal(raw(type="request", request_id="r1", candidates=["a", {"item_id": "b", "tags": value}])).reason
    assert reason == f"request event e1: candidates[1]['tags'] must be a string or a finite number, got {value!r}"
    reason = refusal(raw(type="request", request_id="r1", candidates=["a"], context={"k": value})).reason
    assert reason == f"request event e1: context['k'] must be a string or a finite number, got {value!r}"


@pytest.mark.parametrize("value", [[1], "home", 3])
def test_non_object_context_and_props(value: Any) -> None:
    assert refusal(raw(type="request", request_id="r1", candidates=["a"], context=value)).reason == (
        f"request event e1: context must be an object of string or number values, got {value!r}")
    assert refusal(raw(props=value)).reason == f"view event e1: field 'props' must be an object, got {value!r}"


def test_click_without_request_id_or_item_id() -> None:
    assert refusal(raw(type="click", item_id="a")).reason == (
        "click event e1: missing field 'request_id' (a click names the request it answers)")
    assert refusal(raw(type="click", request_id="r1")).reason == (
        "click event e1: missing field 'item_id' (a click names the clicked candidate)")
    assert refusal(raw(type="click", request_id="r1", item_id=4)).reason == (
        "click event e1: field 'item_id' must be a non-empty string, got 4")


def test_conversion_with_ill_typed_optional_fields() -> None:
    assert refusal(raw(type="conversion", value="12")).reason == (
        "conversion event e1: field 'value' must be a finite number, got '12'")
    assert refusal(raw(type="conversion", value=True)).reason == (
        "conversion event e1: field 'value' must be a finite number, got True")
    assert refusal(raw(type="conversion", request_id="")).reason == (
        "conversion event e1: field 'request_id' must be a non-empty string, got ''")
    assert refusal(raw(item_id=3)).reason == "view event e1: field 'item_id' must be a non-empty string, got 3"


def test_key_mismatch_and_missing_key() -> None:
    err = refusal(raw(), key=b"u2")
    assert err.code == "key_mismatch"
    assert err.reason == ("view event e1: message key b'u2' is not the user_id 'u1'; produce events with "
                          "key=user_id so every event of a user reaches the partition that holds its state")
    err = refusal(raw(), key=b"")
    assert err.code == "key_missing"
    assert err.reason == ("view event e1: the message has no key; produce events with key=user_id so every "
                          "event of a user reaches the partition that holds its state")


def test_long_values_are_shortened_in_messages() -> None:
    reason = refusal(raw(ts="9" * 200)).reason
    assert reason == "view event e1: field 'ts' must be a finite number, got '" + "9" * 56 + "..."


# --- encode_event is the inverse of decode_event ----------------------------------------------------------------

EXAMPLES: list[Event] = [
    Request(event_id="e1", user_id="u1", ts=10.0, type="request", extra={"k": [1, {"z": None}]}, request_id="r1",
            candidates=(Candidate("a"), Candidate("b", {"price": 9.5, "cat": "x"})), context={"page": "home"}),
    Request(event_id="e2", user_id="u1", ts=0.0, type="request", request_id="r2", candidates=(Candidate("a"),)),
    Click(event_id="e3", user_id="u1", ts=11.25, type="click", request_id="r1", item_id="b"),
    Conversion(event_id="e4", user_id="u1", ts=12.0, type="conversion", request_id="r1", item_id="b", value=3.5),
    Conversion(event_id="e5", user_id="u1", ts=12.0, type="conversion", extra={"props": {"a": 1}}),
    Interaction(event_id="e6", user_id="u2", ts=13.0, type="view", item_id="a", props={"n": [1, 2]}),
    Interaction(event_id="e7", user_id="u2", ts=1e11, type="add_to_cart", extra={"request_id": "r1"}),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.event_id)
def test_encode_round_trips(event: Event) -> None:
    data = encode_event(event)
    assert decode_event(data) == event
    assert decode_event(data, key=event.user_id.encode()) == event
    assert encode_event(decode_event(data)) == data


def test_encoded_form_is_what_producers_send() -> None:
    assert orjson.loads(encode_event(EXAMPLES[0])) == {
        "event_id": "e1", "user_id": "u1", "ts": 10.0, "type": "request", "request_id": "r1",
        "candidates": ["a", {"item_id": "b", "price": 9.5, "cat": "x"}], "context": {"page": "home"},
        "k": [1, {"z": None}],
    }
    assert orjson.loads(encode_event(EXAMPLES[4])) == {
        "event_id": "e5", "user_id": "u1", "ts": 12.0, "type": "conversion", "props": {"a": 1}}


# --- properties: nothing but InvalidEvent escapes; what decodes is valid and round-trips -------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
KEYS = st.none() | st.just(b"") | st.binary(max_size=6)
FAST = settings(max_examples=200, deadline=None)
FIELDS = ["event_id", "user_id", "ts", "type", "request_id", "item_id", "candidates", "context", "props", "value"]
# Values at the edges of what is accepted: milliseconds, negative, NaN, infinity, bools, empty, huge.
SPECIAL = st.sampled_from([0, -1, -0.0, 1e11, 1e11 + 1, 1.7e12, math.nan, math.inf, -math.inf, True, False, "",
                           [], {}, 2**70, "a", ["a", "a"], [{"item_id": "a"}, "a"], {"k": [1]}])


def _to_json(value: Any) -> bytes:
    # The stdlib writes NaN/Infinity literals and integers of any size, so the decoder meets them too.
    return json.dumps(value).encode()


def _check_invariants(event: Event, max_candidates: int = 500) -> None:
    for text in (event.event_id, event.user_id, event.type):
        assert isinstance(text, str) and text
    assert type(event.ts) is float and math.isfinite(event.ts) and 0 <= event.ts <= 1e11
    assert isinstance(event.extra, dict)
    assert not {"event_id", "user_id", "ts", "type"} & event.extra.keys()
    if isinstance(event, Request):
        assert event.type == "request"
        assert event.request_id
        assert 1 <= len(event.candidates) <= max_candidates
        ids = [c.item_id for c in event.candidates]
        assert all(isinstance(i, str) and i for i in ids)
        assert len(set(ids)) == len(ids)
        for flat in [event.context, *(c.attrs for c in event.candidates)]:
            for v in flat.values():
                assert isinstance(v, str) or (type(v) is float and math.isfinite(v))
        assert not {"request_id", "candidates", "context"} & event.extra.keys()
    elif isinstance(event, Click):
        assert event.type == "click" and event.request_id and event.item_id
    elif isinstance(event, Conversion):
        assert event.type == "conversion"
        assert event.value is None or (type(event.value) is float and math.isfinite(event.value))
    else:
        assert isinstance(event, Interaction)
        assert event.type not in ("request", "click", "conversion")
        assert isinstance(event.props, dict)
        assert event.item_id is None or event.item_id


def _decode_or_refuse(data: bytes, key: bytes | None, max_candidates: int = 500) -> Event | None:
    try:
        event = decode_event(data, key=key, max_candidates=max_candidates)
    except InvalidEvent as exc:
        assert exc.reason and exc.code
        return None
    _check_invariants(event, max_candidates)
    if key is not None:
        assert key == event.user_id.encode()
    assert decode_event(encode_event(event)) == event
    return event


@FAST
@given(st.binary(max_size=200), KEYS)
def test_arbitrary_bytes_raise_only_invalid_event(data: bytes, key: bytes | None) -> None:
    _decode_or_refuse(data, key)


@FAST
@given(JSON_VALUES, KEYS)
def test_arbitrary_json_raises_only_invalid_event(value: Any, key: bytes | None) -> None:
    _decode_or_refuse(_to_json(value), key)


# Valid events, built as records; extra keys never collide with the fields of any type.
_TEXT = st.text(min_size=1, max_size=6)
_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_FLAT = st.dictionaries(st.text(max_size=4), _TEXT | _FINITE, max_size=3)
_PLAIN_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _FINITE | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)
_RESERVED = {"event_id", "user_id", "ts", "type", "request_id", "candidates", "context", "item_id", "value", "props"}
_EXTRA = st.dictionaries(st.text(max_size=6).filter(lambda k: k not in _RESERVED), _PLAIN_JSON, max_size=3)
_COMMON = {
    "event_id": _TEXT, "user_id": _TEXT, "ts": st.floats(min_value=0, max_value=1e11), "extra": _EXTRA,
}
_CANDIDATES = st.lists(
    st.builds(Candidate, _TEXT, st.dictionaries(st.text(max_size=4).filter(lambda k: k != "item_id"),
                                                _TEXT | _FINITE, max_size=3)),
    min_size=1, max_size=5, unique_by=lambda c: c.item_id,
).map(tuple)
VALID_EVENTS = st.one_of(
    st.builds(Request, type=st.just("request"), request_id=_TEXT, candidates=_CANDIDATES, context=_FLAT, **_COMMON),
    st.builds(Click, type=st.just("click"), request_id=_TEXT, item_id=_TEXT, **_COMMON),
    st.builds(Conversion, type=st.just("conversion"), request_id=st.none() | _TEXT, item_id=st.none() | _TEXT,
              value=st.none() | _FINITE, **_COMMON),
    st.builds(Interaction, type=_TEXT.filter(lambda t: t not in ("request", "click", "conversion")),
              item_id=st.none() | _TEXT, props=st.dictionaries(st.text(max_size=4), _PLAIN_JSON, max_size=3),
              **_COMMON),
)


@st.composite
def event_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event's JSON object with a few fields removed or replaced by values of any type."""
    obj: dict[str, Any] = orjson.loads(encode_event(draw(VALID_EVENTS)))
    if draw(st.booleans()):
        obj["user_id"] = draw(st.sampled_from(["u1", "u2"]))
    if draw(st.booleans()):
        obj["type"] = draw(st.sampled_from(["request", "click", "conversion", "view"]))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        replacement = draw(st.none() | SPECIAL | JSON_VALUES | st.lists(JSON_VALUES | st.just("a"), max_size=6))
        if replacement is None and draw(st.booleans()):
            obj.pop(name, None)
        else:
            obj[name] = replacement
    return obj


@FAST
@given(event_shaped(), st.none() | st.just(b"") | st.sampled_from([b"u1", b"u2"]), st.integers(1, 4))
def test_event_shaped_dicts_raise_only_invalid_event(obj: dict[str, Any], key: bytes | None, limit: int) -> None:
    _decode_or_refuse(_to_json(obj), key, max_candidates=limit)


@FAST
@given(VALID_EVENTS)
def test_valid_events_round_trip(event: Event) -> None:
    data = encode_event(event)
    decoded = decode_event(data, key=event.user_id.encode())
    assert decoded == event
    assert type(decoded) is type(event)
    _check_invariants(decoded)
    assert encode_event(decoded) == data
