"""Importers: trivago and TalkingData rows become valid events, in event-time order, nothing lost silently."""

from __future__ import annotations

import gzip
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.events import Click, Conversion, Interaction, Request, decode_event
from streams.tools.importers.talkingdata import read_talkingdata
from streams.tools.importers.trivago import read_trivago

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
TRIVAGO = DATA / "trivago_100k.csv.gz"
TALKINGDATA = DATA / "talkingdata_100k.csv.gz"

TRIVAGO_HEADER = ("user_id,session_id,timestamp,step,action_type,reference,platform,city,device,"
                  "current_filters,impressions,prices\n")
TALKINGDATA_HEADER = "ip,app,device,os,channel,click_time,attributed_time,is_attributed\n"


def _decode_all(events: list[dict[str, Any]]) -> list[Any]:
    return [decode_event(orjson.dumps(ev)) for ev in events]


def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------- trivago

TRIVAGO_SAMPLE = TRIVAGO_HEADER + (
    # line 2: text interaction
    'U1,s1,100,1,search for destination,"Bonn, Germany",DE,"Bonn, Germany",mobile,,,\n'
    # line 3: item interaction
    "U1,s1,101,2,interaction item image,5,DE,\"Bonn, Germany\",mobile,,,\n"
    # line 4: clickout, clicked item shown second
    'U1,s1,105,3,clickout item,7,DE,"Bonn, Germany",mobile,Best Value,5|7|9,80|95.5|60\n'
    # line 5: item interaction whose reference is not an item id (kept, noted)
    "U2,s2,105,1,interaction item info,unknown,UK,London,desktop,,,\n"
    # line 6: clickout on an item that was not shown: still a click (noted)
    "U2,s2,110,2,clickout item,42,UK,London,desktop,,11|12,100|120\n"
    # line 7: impressions and prices of different lengths: skipped
    "U2,s2,111,3,clickout item,11,UK,London,desktop,,11|12,100\n"
    # line 8: not a timestamp: skipped
    "U2,s2,soon,4,filter selection,Pool,UK,London,desktop,,,\n"
    # line 9: the same item shown twice: skipped (a request scores each item once)
    "U2,s2,112,5,clickout item,11,UK,London,desktop,,11|11,100|100\n"
    # line 10: too few fields: skipped
    "U2,s2,113,6,filter selection\n"
    # line 11: (session, step) already used on line 2: id suffixed (noted)
    "U1,s1,120,1,clickout item,9,DE,Berlin,tablet,,9,70\n"
    # line 12: search for item (an item id), then a sort change (text)
    "U1,s1,121,2,search for item,1234,DE,Berlin,tablet,,,\n"
    "U1,s1,122,3,change of sort order,price only,DE,Berlin,tablet,,,\n"
    # line 14: a price that is not a number: skipped
    "U1,s1,123,4,clickout item,9,DE,Berlin,tablet,,9,n/a\n"
)


@pytest.fixture(params=["t.csv", "t.csv.gz"])
def trivago_sample(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return _write(tmp_path / request.param, TRIVAGO_SAMPLE)


def test_trivago_sample_events(trivago_sample: Path) -> None:
    reader = read_trivago(trivago_sample)
    events = list(reader)
    decoded = _decode_all(events)
    assert [e["type"] for e in events] == [
        "search_for_destination", "interaction_item_image", "request", "click", "interaction_item_info",
        "request", "click", "request", "click", "search_for_item", "change_of_sort_order",
    ]
    requests = [d for d in decoded if isinstance(d, Request)]
    clicks = [d for d in decoded if isinstance(d, Click)]
    assert len(requests) == 3 and len(clicks) == 3
    assert sum(len(r.candidates) for r in requests) == 3 + 2 + 1
    first = requests[0]
    assert [c.item_id for c in first.candidates] == ["5", "7", "9"]  # position = list order
    assert [c.attrs for c in first.candidates] == [{"price": 80.0}, {"price": 95.5}, {"price": 60.0}]
    assert first.context == {"platform": "DE", "city": "Bonn, Germany", "device": "mobile"}
    assert first.ts == 105.0 and first.user_id == "U1"
    for request, click in zip(requests, clicks, strict=True):
        assert click.request_id == request.request_id and click.ts == request.ts
    assert [c.item_id for c in clicks] == ["7", "42", "9"]
    assert clicks[1].item_id not in {c.item_id for c in requests[1].candidates}
    interactions = [d for d in decoded if isinstance(d, Interaction)]
    assert [(i.item_id, i.props) for i in interactions] == [
        (None, {"reference": "Bonn, Germany"}), ("5", {}), (None, {"reference": "unknown"}),
        ("1234", {}), (None, {"reference": "price only"}),
    ]
    assert all(d.extra == {"session_id": "s1" if d.user_id == "U1" else "s2"} for d in decoded)
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert len({r.request_id for r in requests}) == 3
    assert requests[2].request_id == "trivago:s1:1#2"
    assert [d.ts for d in decoded] == sorted(d.ts for d in decoded)

    assert reader.events == len(events) == 11
    assert dict(reader.skipped) == {
        "clickout with a different number of impressions and prices": 1,
        "timestamp is not seconds since the epoch": 1,
        "clickout showing the same item twice": 1,
        "wrong number of fields": 1,
        "clickout with a price that is not a number": 1,
    }
    assert dict(reader.notes) == {
        "item action whose reference is not an item id: kept in props": 1,
        "clicked item not among the impressions: click kept": 1,
        "(session_id, step) repeated: id suffixed": 3,
    }
    assert reader.first_line["wrong number of fields"] == 10
    assert reader.first_line["clickout with a price that is not a number"] == 14
    assert reader.first_line["(session_id, step) repeated: id suffixed"] == 11
    assert "11 events, 5 rows skipped" in reader.report()


def test_trivago_is_deterministic(trivago_sample: Path) -> None:
    assert list(read_trivago(trivago_sample)) == list(read_trivago(trivago_sample))


def test_trivago_rows_going_back_in_time_raise(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", TRIVAGO_HEADER + "U1,s1,100,1,search for poi,Zoo,DE,Bonn,mobile,,,\n"
                  "U1,s1,99,2,search for poi,Park,DE,Bonn,mobile,,,\n")
    with pytest.raises(ValueError, match=r"t\.csv:3: timestamp 99 is earlier"):
        list(read_trivago(path))


def test_trivago_missing_column_raises(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "user_id,session_id,timestamp,step,action_type\nU1,s1,1,1,x\n")
    with pytest.raises(ValueError, match="lacks reference, platform, city, device, impressions, prices"):
        list(read_trivago(path))


@pytest.mark.skipif(not TRIVAGO.exists(), reason=f"{TRIVAGO} not present (see shared/data/README.md)")
def test_trivago_real_file() -> None:
    reader = read_trivago(TRIVAGO)
    head = list(itertools.islice(reader, 5_000))
    decoded = _decode_all(head)
    assert [d.ts for d in decoded] == sorted(d.ts for d in decoded)
    rest = list(reader)
    events = head + rest
    types = Counter(e["type"] for e in events)
    # The figures of shared/data/README.md: 13,597 clickouts, 312,539 (shown item, clicked?) pairs.
    assert types["request"] == types["click"] == 13_597
    assert sum(len(e["candidates"]) for e in events if e["type"] == "request") == 312_539
    assert sum(types.values()) == 100_003 + 13_597
    assert not reader.skipped, reader.report()
    assert reader.notes["clicked item not among the impressions: click kept"] == 1
    assert len({e["event_id"] for e in events}) == len(events)
    _decode_all([e for e in events if e["type"] in ("request", "click")][-2_000:])


# ----------------------------------------------------------------------------------------- talkingdata

TALKINGDATA_SAMPLE = TALKINGDATA_HEADER + (
    "9,12,1,13,497,2017-11-07 09:30:40,,0\n"  # row 1
    "8,19,0,29,213,2017-11-07 09:30:38,2017-11-07 09:31:00,1\n"  # row 2: converts 22 s later
    "7,3,1,17,115,2017-11-07 09:31:00,,0\n"  # row 3: same second as row 2's conversion
    "9,12,1,13,497,2017-11-07 09:30:40,,0\n"  # row 4: duplicate of row 1
    "6,5,1,1,1,2017-11-07 09:29:59,2017-11-07 09:29:59,1\n"  # row 5: converts in the same second
    "5,5,1,1,1,7 Nov 2017,,0\n"  # row 6: bad time: skipped
    "4,5,1,1,1,2017-11-07 09:00:00,,yes\n"  # row 7: bad flag: skipped
    "3,5,1,1,1,2017-11-07 09:00:00,,1\n"  # row 8: converted without a time: request only
)


@pytest.fixture(params=["td.csv", "td.csv.gz"])
def talkingdata_sample(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return _write(tmp_path / request.param, TALKINGDATA_SAMPLE)


def test_talkingdata_sample_events(talkingdata_sample: Path) -> None:
    reader = read_talkingdata(talkingdata_sample)
    events = list(reader)
    decoded = _decode_all(events)
    t0 = 1510045200.0  # 2017-11-07 09:00:00 UTC
    assert [(e["type"], e["user_id"], e["ts"] - t0) for e in events] == [
        ("request", "3", 0.0),
        ("request", "6", 1799.0),
        ("conversion", "6", 1799.0),  # after its request at the same second
        ("request", "8", 1838.0),
        ("request", "9", 1840.0),  # row 1
        ("request", "9", 1840.0),  # row 4, its duplicate
        ("conversion", "8", 1860.0),  # row 2 sorts before row 3 at the same second
        ("request", "7", 1860.0),
    ]
    requests = [d for d in decoded if isinstance(d, Request)]
    conversions = [d for d in decoded if isinstance(d, Conversion)]
    assert len(requests) == 6 and len(conversions) == 2
    assert all(len(r.candidates) == 1 and r.candidates[0].attrs == {} for r in requests)
    by_id = {r.request_id: r for r in requests}
    assert len(by_id) == 6, "duplicate rows still get distinct request ids"
    for c in conversions:
        assert c.item_id == by_id[c.request_id or ""].candidates[0].item_id
        assert c.ts >= by_id[c.request_id or ""].ts
    r8 = next(r for r in requests if r.user_id == "8")
    assert r8.candidates[0].item_id == "19"
    assert r8.context == {"device": "0", "os": "29", "channel": "213"}
    assert r8.request_id == "talkingdata:2:8:1510047038"
    assert len({e["event_id"] for e in events}) == len(events)
    assert dict(reader.skipped) == {
        "click_time is not a UTC time YYYY-MM-DD HH:MM:SS": 1,
        "is_attributed is neither 0 nor 1": 1,
        "is_attributed 1 without a valid attributed_time (request kept)": 1,
    }
    assert reader.first_line["click_time is not a UTC time YYYY-MM-DD HH:MM:SS"] == 7


def test_talkingdata_order_does_not_depend_on_the_file_order(tmp_path: Path) -> None:
    """Shuffling rows changes the row numbers in the ids, but not the (ts, user) sequence."""
    header, *rows = TALKINGDATA_SAMPLE.splitlines(keepends=True)
    forward = list(read_talkingdata(_write(tmp_path / "a.csv", header + "".join(rows[:5]))))
    backward = list(read_talkingdata(_write(tmp_path / "b.csv", header + "".join(reversed(rows[:5])))))

    def key(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((e["ts"], e["type"], e["user_id"]) for e in events)

    assert key(forward) == key(backward)
    assert [e["ts"] for e in backward] == sorted(e["ts"] for e in backward)


@pytest.mark.skipif(not TALKINGDATA.exists(), reason=f"{TALKINGDATA} not present (see shared/data/README.md)")
def test_talkingdata_real_file() -> None:
    reader = read_talkingdata(TALKINGDATA)
    events = list(reader)
    types = Counter(e["type"] for e in events)
    assert types == {"request": 100_000, "conversion": 227}  # shared/data/README.md
    assert not reader.skipped, reader.report()
    ts = [e["ts"] for e in events]
    assert ts == sorted(ts)
    assert ts[0] >= 1509984000 and ts[-1] < 1510272000  # 6-9 Nov 2017 UTC
    assert len({e["event_id"] for e in events}) == len(events)
    assert len({e["user_id"] for e in events}) == 34_857
    requests = {e["request_id"]: e for e in events if e["type"] == "request"}
    for e in events:
        if e["type"] == "conversion":
            assert e["ts"] >= requests[e["request_id"]]["ts"]
    _decode_all(events[:5_000] + [e for e in events if e["type"] == "conversion"])
