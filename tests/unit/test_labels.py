"""The label join, through the processor (the replay driver runs exactly what a worker runs)."""

from __future__ import annotations

from typing import Any

import pytest

from streams.replay.driver import ReplayDriver
from streams.settings import Settings

# Click window 60 s, lateness 10 s: request r1 at 100 closes once an event of the partition reaches > 170.
# The label join as the contract states it (examples when windows close); fnw's early records: tests/unit/test_fnw.py.
SETTINGS = Settings(click_window=60.0, allowed_lateness=10.0, max_pending=3, learn_from="wait")


def ev(event_id: str, ts: float, type_: str, user: str = "u1", **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user, "ts": ts, "type": type_, **fields}


def request(event_id: str, ts: float, request_id: str, items: list[str], user: str = "u1") -> dict[str, Any]:
    return ev(event_id, ts, "request", user=user, request_id=request_id, candidates=items)


def click(event_id: str, ts: float, request_id: str, item: str, user: str = "u1") -> dict[str, Any]:
    return ev(event_id, ts, "click", user=user, request_id=request_id, item_id=item)


def run(*events: dict[str, Any], finish: bool = False, settings: Settings = SETTINGS) -> ReplayDriver:
    driver = ReplayDriver(settings)
    driver.pipe_all(events)
    if finish:
        driver.finish()
    return driver


def test_a_click_within_the_window_is_a_positive_example_with_the_logged_vector() -> None:
    clicked = (ev("e0", 90.0, "view", item_id="b"), request("e1", 100.0, "r1", ["a", "b", "c"]),
               click("e2", 130.0, "r1", "b"))
    assert run(*clicked).read("examples") == []  # examples go out together, when the window closes
    d = run(*clicked, finish=True)
    [example] = [e for e in d.read("examples") if e["y"] == 1]
    logged = d.read("feature-log")[0]
    assert (example["request_id"], example["item_id"], example["y"]) == ("r1", "b", 1)
    assert example["x"] == logged["features"][1]["x"]  # the vector of serving time, not one recomputed now
    assert example["x"]["item_seen"] == 1.0 and "count_click" not in example["x"]
    assert example["scores_at_serve"] == {m: s[1] for m, s in logged["scores"].items()}
    assert (example["ts"], example["label_ts"], example["arm"]) == (100.0, 130.0, logged["arm"])
    assert example["model_versions"] == logged["model_versions"] and example["schema"] == logged["schema"]
    assert [o.key for o in d.outputs["examples"]] == [b"r1"] * 3


def test_unclicked_candidates_become_negatives_exactly_when_the_watermark_passes_the_window() -> None:
    base = [request("e1", 100.0, "r1", ["a", "b"]), click("e2", 110.0, "r1", "a")]
    # Deadline 160; the watermark is the newest ts less 10 s of lateness.
    assert run(*base, ev("e3", 170.0, "view", user="u2")).read("examples") == []  # watermark 160: still open
    d = run(*base, ev("e3", 170.001, "view", user="u2"))  # watermark just past 160: closes
    assert [(e["item_id"], e["y"], e["label_ts"]) for e in d.read("examples")] == [("a", 1, 110.0), ("b", 0, 160.0)]
    assert d.processor.counters.get("requests_closed") == 1


def test_a_late_click_is_counted_not_learned() -> None:
    after_close = run(request("e1", 100.0, "r1", ["a", "b"]), ev("e2", 200.0, "view"), click("e3", 150.0, "r1", "a"))
    assert [e["y"] for e in after_close.read("examples")] == [0, 0]
    assert after_close.processor.counters.get("labels_late") == 1
    # Past the window but before the watermark closes it: late too, by the click's own event time.
    past_window = run(request("e1", 100.0, "r1", ["a"]), click("e2", 165.0, "r1", "a"), finish=True)
    assert [e["y"] for e in past_window.read("examples")] == [0]
    assert past_window.processor.counters.get("labels_late") == 1


def test_a_duplicate_click_counts_once() -> None:
    d = run(request("e1", 100.0, "r1", ["a", "b"]), click("e2", 110.0, "r1", "a"), click("e3", 111.0, "r1", "a"),
            finish=True)
    assert sorted((e["item_id"], e["y"]) for e in d.read("examples")) == [("a", 1), ("b", 0)]
    assert d.processor.counters.get("labels_duplicate") == 1


def test_several_clicks_on_one_request_are_each_positive() -> None:
    d = run(request("e1", 100.0, "r1", ["a", "b", "c"]), click("e2", 110.0, "r1", "a"), click("e3", 120.0, "r1", "c"),
            finish=True)
    assert sorted((e["item_id"], e["y"]) for e in d.read("examples")) == [("a", 1), ("b", 0), ("c", 1)]


@pytest.mark.parametrize(("label", "code"), [
    (click("e2", 110.0, "nope", "a"), "label_unknown_request"),
    (click("e2", 110.0, "r1", "zz"), "label_unknown_item"),
    (click("e2", 110.0, "r1", "a", user="someone-else"), "label_unknown_request"),
])
def test_a_label_that_joins_nothing_is_dead_lettered_with_the_reason(label: dict[str, Any], code: str) -> None:
    d = run(request("e1", 100.0, "r1", ["a", "b"]), label)
    [dead] = d.read("dead-letter")
    assert dead["code"] == code
    assert repr(label["request_id"] if code == "label_unknown_request" else label["item_id"]) in dead["error"]
    assert d.processor.counters.get(f"labels_{code.removeprefix('label_')}") == 1
    assert d.read("examples") == []


def test_the_end_of_input_closes_every_waiting_request() -> None:
    d = run(request("e1", 100.0, "r1", ["a"]), request("e2", 100.0, "r2", ["b"], user="u2"), finish=True)
    assert sorted((e["request_id"], e["y"]) for e in d.read("examples")) == [("r1", 0), ("r2", 0)]
    assert all("_pending" not in state for state in map(bytes.decode, d.states.values()))


def test_more_waiting_requests_than_allowed_close_the_oldest_early() -> None:
    d = run(*(request(f"e{i}", 100.0 + i, f"r{i}", ["a"]) for i in range(5)))  # max_pending 3
    assert [e["request_id"] for e in d.read("examples")] == ["r0", "r1"]
    assert d.processor.counters.get("requests_evicted") == 2


def test_conversions_are_the_label_when_configured_with_their_own_window() -> None:
    settings = Settings(label="conversion", conversion_window=1000.0, allowed_lateness=10.0)
    d = run(request("e1", 100.0, "r1", ["app-7"]), click("e2", 110.0, "r1", "app-7"),
            ev("e3", 900.0, "conversion", request_id="r1"), finish=True, settings=settings)
    [example] = d.read("examples")  # the click is an interaction here; the conversion names no item: one candidate
    assert (example["item_id"], example["y"], example["label_ts"]) == ("app-7", 1, 900.0)
    assert d.processor.counters.get("labels_positive") == 1


def test_examples_replay_byte_for_byte() -> None:
    from streams.tools.simulate import simulate

    stream, _ = simulate(users=20, events=800, seed=4)
    first, second = run(*stream, finish=True), run(*stream, finish=True)
    assert [o.value for o in first.outputs["examples"]] == [o.value for o in second.outputs["examples"]]
    positives = sum(e["y"] for e in first.read("examples"))
    assert positives == sum(1 for e in stream if e["type"] == "click") - first.processor.counters.get("labels_late")
