"""The guarded event clock (streams/core/eventclock.py): one bad ``ts`` cannot move a partition's clock, a real
jump can.

The rule on its own first, then through the processor and the replay on the simulator's stream, then across a
simulated crash (the worker saves the clock after the batch's states), then its settings.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.featureset import LAST_POSITION
from features.state import decode_state
from streams.cli import main
from streams.core.deadletter import Source
from streams.core.eventclock import ClockRule, PartitionClock, Release, Timed
from streams.core.labels import PENDING
from streams.core.processor import Processor
from streams.core.records import Output
from streams.core.statecache import StateCache
from streams.replay.driver import ReplayDriver
from streams.settings import Settings, SettingsError, load_settings, resolve_settings, show_settings
from streams.tools.eventfile import write_events
from streams.tools.record import Recorded
from streams.tools.simulate import simulate

RULE = ClockRule(max_jump=900.0, max_behind=30 * 86400.0, confirmations=3)
DAY = 86400.0
YEAR = 365 * DAY
T0 = 1_700_000_000.0


def timed(offset: int, ts: float, broker: float | None = None) -> Timed:
    return Timed(ts, Source("events", 0, offset, None, broker), b"{}")


class Feeder:
    """Offers events at consecutive offsets; keeps every release, in order."""

    def __init__(self, clock: PartitionClock | None = None, offset: int = 0) -> None:
        self.clock = clock or PartitionClock(RULE)
        self.offset = offset
        self.releases: list[Release] = []

    def offer(self, ts: float, broker: float | None = None) -> list[tuple[int, bool]]:
        """(offset, accepted) of what this event let out."""
        out = self.clock.offer(timed(self.offset, ts, broker))
        self.offset += 1
        self.releases.extend(out)
        return [(r.item.offset, r.reason is None) for r in out]

    def flush(self) -> list[tuple[int, bool]]:
        out = self.clock.flush()
        self.releases.extend(out)
        return [(r.item.offset, r.reason is None) for r in out]

    def refused(self) -> dict[int, str]:
        return {r.item.offset: r.reason for r in self.releases if r.reason is not None}


# --------------------------------------------------------------------------------------------------- the rule


def test_small_steps_move_the_clock_at_once_and_lateness_is_not_refused() -> None:
    f = Feeder()
    assert [f.offer(T0 + dt) for dt in (0, 10, 900, 850, 1700)] == [[(i, True)] for i in range(5)]
    assert f.clock.newest == T0 + 1700
    assert [r.behind for r in f.releases] == [0.0, 0.0, 0.0, 50.0, 0.0]


def test_a_lone_event_far_ahead_is_held_then_refused_by_the_next_and_never_moves_the_clock() -> None:
    f = Feeder()
    f.offer(T0)
    assert f.offer(T0 + 10 * YEAR) == []  # held: it might be the stream moving on
    assert f.clock.newest == T0
    assert f.offer(T0 + 5) == [(1, False), (2, True)]  # the next event did not follow it
    assert f.clock.newest == T0 + 5
    reason = f.refused()[1]
    assert "315360000 s ahead of its partition's clock" in reason
    assert "did not follow it" in reason and "clock_max_jump (900 s)" in reason and "clock_confirmations (3)" in reason


def test_an_event_far_behind_is_refused_at_once_and_touches_nothing() -> None:
    f = Feeder()
    f.offer(T0)
    assert f.offer(T0 - 5 * YEAR) == [(1, False)]
    assert f.offer(T0 - 29 * DAY) == [(2, True)]  # late, but within the user TTL: some state still covers it
    assert f.clock.newest == T0
    assert "behind its partition's clock" in f.refused()[1] and "user_ttl (2592000 s)" in f.refused()[1]


def test_two_days_of_silence_then_normal_traffic_is_confirmed_and_nothing_is_refused() -> None:
    f = Feeder()
    for i in range(5):
        f.offer(T0 + i)
    resumed = [f.offer(T0 + 2 * DAY + i) for i in range(6)]
    # held until three more events followed it, then released in order; after that the clock is there
    assert resumed == [[], [], [], [(5, True), (6, True), (7, True), (8, True)], [(9, True)], [(10, True)]]
    assert f.refused() == {} and f.clock.newest == T0 + 2 * DAY + 5


def test_a_sparse_stream_of_jumps_is_accepted_a_few_events_late() -> None:
    f = Feeder()
    for i in range(10):
        f.offer(T0 + i * 3 * 3600)  # one event every three hours: every one a jump
    assert f.flush() == [(7, False), (8, False), (9, False)]  # the last ones never got their confirmations
    assert [r.item.offset for r in f.releases if r.reason is None] == list(range(7))


def test_an_outlier_just_before_a_real_resume_is_refused_and_the_resume_accepted() -> None:
    f = Feeder()
    f.offer(T0)
    f.offer(T0 + 10 * YEAR)
    for i in range(4):
        f.offer(T0 + 2 * DAY + i)
    assert list(f.refused()) == [1]
    assert [r.item.offset for r in f.releases if r.reason is None] == [0, 2, 3, 4, 5]
    assert f.clock.newest == T0 + 2 * DAY + 3


def test_a_too_old_event_during_a_hold_does_not_refute_the_jump() -> None:
    f = Feeder()
    f.offer(T0)
    f.offer(T0 + 2 * DAY)
    assert f.offer(T0 - YEAR) == [(2, False)]  # refused on its own, no vote
    for i in range(3):
        f.offer(T0 + 2 * DAY + i)
    assert list(f.refused()) == [2] and f.clock.newest == T0 + 2 * DAY + 2


def test_the_broker_timestamp_refuses_an_event_from_the_future_at_once() -> None:
    f = Feeder()
    produced = T0 + YEAR  # a log of last year, produced at full speed now
    f.offer(T0, broker=produced)
    assert f.offer(T0 + 100, broker=produced + 0.1) == [(1, True)]
    assert f.offer(T0 + 2000, broker=produced + 0.2) == []  # ahead of the clock, not of its broker time: held
    assert f.offer(T0 + 2 * YEAR, broker=produced + 0.3) == [(3, False)]  # after it was produced: refused at once
    assert "after the broker received the event" in f.refused()[3]
    assert [f.offer(T0 + 2000 + i, broker=produced + 1 + i) for i in range(3)][-1] == [(2, True), (4, True),
                                                                                      (5, True), (6, True)]


def test_a_jump_the_broker_clock_made_too_is_accepted_at_once() -> None:
    f = Feeder()
    f.offer(T0, broker=T0 + 0.5)
    assert f.offer(T0 + 2 * DAY, broker=T0 + 2 * DAY + 1) == [(1, True)]  # a quiet partition resuming live
    f = Feeder()
    f.offer(T0, broker=T0 + YEAR)
    assert f.offer(T0 + 2 * DAY, broker=T0 + YEAR + 1) == []  # last year's log, fast: the broker did not move


def test_a_fresh_event_is_not_refuted_by_a_late_producer_that_went_first() -> None:
    f = Feeder()
    now = T0 + 3600
    assert f.offer(T0, broker=now) == [(0, True)]  # a producer an hour late starts the partition's clock
    assert f.offer(now + 1, broker=now + 1) == [(1, True)]  # fresh, vouched for by its broker time: at once
    assert f.offer(T0 + 5, broker=now + 2) == [(2, True)]  # the late producer again: a late event, accepted
    assert f.offer(now + 3, broker=now + 3) == [(3, True)]
    assert f.refused() == {} and f.clock.newest == now + 3


def test_on_a_backlog_a_wall_clock_stamp_is_held_and_refuted() -> None:
    f = Feeder()
    now = T0 + YEAR  # last year's log produced now: the clock trails its broker time by a year
    f.offer(T0, broker=now)
    assert f.offer(now, broker=now + 0.1) == []  # stamped with the wall clock: held like any other jump
    assert f.offer(T0 + 1, broker=now + 0.2) == [(1, False), (2, True)]
    assert f.clock.newest == T0 + 1


def test_the_end_of_input_refuses_an_unconfirmed_jump_and_judges_the_rest_again() -> None:
    f = Feeder()
    f.offer(T0)
    f.offer(T0 + 10 * YEAR)
    f.offer(T0 + 10 * YEAR + 1)
    assert f.flush() == [(1, False), (2, False)]
    assert "the input ended before it was confirmed" in f.refused()[1]
    assert f.clock.newest == T0 and f.clock.held == []


streams_of_time = st.lists(
    st.one_of(st.floats(-120, 1200), st.sampled_from([2 * DAY, 10 * YEAR, -5 * YEAR, -40 * DAY])),
    min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(streams_of_time, st.integers(0, 40), st.booleans())
def test_every_event_is_decided_once_accepted_ones_in_order_and_a_saved_clock_decides_the_same(
        steps: list[float], cut: int, broker: bool) -> None:
    """Whatever the times: nothing lost or doubled, order kept for what is processed; stopping anywhere,
    saving the clock and going on from the saved bytes (a worker restart) decides everything the same way."""
    times = []
    ts = T0
    for step in steps:
        ts = ts + step if abs(step) < DAY else T0 + step  # big steps are outliers around T0, or real jumps
        times.append(ts)

    def stamp(i: int) -> float | None:
        return T0 + i if broker else None

    whole = Feeder()
    for i, t in enumerate(times):
        whole.offer(t, stamp(i))
    whole.flush()
    decided = [r.item.offset for r in whole.releases]
    assert sorted(decided) == list(range(len(times)))
    accepted = [r.item.offset for r in whole.releases if r.reason is None]
    assert accepted == sorted(accepted)

    cut = min(cut, len(times))
    first = Feeder()
    for i in range(cut):
        first.offer(times[i], stamp(i))
    restored = PartitionClock.decode(RULE, first.clock.encode())
    assert all(restored.is_redelivery(i) for i in range(cut))
    second = Feeder(restored, offset=cut)
    for i in range(cut, len(times)):
        assert not restored.is_redelivery(i)
        second.offer(times[i], stamp(i))
    second.flush()
    both = [(r.item.offset, r.reason) for r in first.releases + second.releases]
    assert both == [(r.item.offset, r.reason) for r in whole.releases]


# ----------------------------------------------------------------------------------------- processor, replay

SIM_SETTINGS = Settings()


@pytest.fixture(scope="module")
def clean() -> list[dict[str, Any]]:
    return simulate(users=200, events=6000, seed=5)[0]


def _replay(events: list[dict[str, Any]], settings: Settings = SIM_SETTINGS) -> ReplayDriver:
    driver = ReplayDriver(settings)
    driver.pipe_all(events)
    driver.finish()
    return driver


def _view(event_id: str, user_id: str, ts: float) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user_id, "ts": ts, "type": "view", "item_id": "x"}


def test_outliers_both_ways_are_dead_lettered_and_the_examples_are_the_clean_streams(
        clean: list[dict[str, Any]]) -> None:
    a, b = clean[2000], clean[4000]
    future = _view("bad-future", a["user_id"], a["ts"] + 10 * YEAR)
    past = _view("bad-past", b["user_id"], b["ts"] - 5 * YEAR)
    dirty = [*clean[:2000], future, *clean[2000:4000], past, *clean[4000:]]

    base, guarded = _replay(clean), _replay(dirty)
    examples = base.read("examples")
    assert len(examples) > 1000 and sum(e["y"] for e in examples) > 100  # the test means something
    assert guarded.read("examples") == examples  # same count, same positives, same vectors, same order
    assert guarded.read("scores") == base.read("scores")
    assert base.read("dead-letter") == []
    dead = guarded.read("dead-letter")
    assert [(d["code"], orjson.loads(d["raw"])["event_id"]) for d in dead] == [("bad_time", "bad-future"),
                                                                             ("bad_time", "bad-past")]
    assert [d["offset"] for d in dead] == [2000, 4001]
    assert "ahead of its partition's clock" in dead[0]["error"] and "behind" in dead[1]["error"]
    counters = guarded.processor.counters
    assert counters.get("dead_letter.bad_time") == 2 and counters.get("users_expired") == 0
    assert _without_positions(guarded.states) == _without_positions(base.states)  # refused events touched no state


def _without_positions(states: dict[str, bytes]) -> dict[str, Any]:
    """User states less the input position of their last event (the planted events shift positions)."""
    return {user: {k: v for k, v in decode_state(blob).items() if k != LAST_POSITION} for user, blob in states.items()}


def test_unguarded_the_same_outlier_closes_every_waiting_request(clean: list[dict[str, Any]]) -> None:
    """What the guard prevents (the issue's measurement), checked so the test above can fail."""
    a = clean[2000]
    dirty = [*clean[:2000], _view("bad-future", a["user_id"], a["ts"] + 10 * YEAR), *clean[2000:]]
    open_gate = Settings(clock_max_jump=20 * YEAR, user_ttl=40 * YEAR)  # every jump moves the clock
    clean_positives = sum(e["y"] for e in _replay(clean, open_gate).read("examples"))
    poisoned = _replay(dirty, open_gate)
    assert sum(e["y"] for e in poisoned.read("examples")) < 0.8 * clean_positives
    assert poisoned.read("dead-letter") == []


def _with_gap(events: list[dict[str, Any]], at: int, gap: float) -> list[dict[str, Any]]:
    return [*events[:at], *({**e, "ts": e["ts"] + gap} for e in events[at:])]


def test_a_genuine_gap_is_accepted_and_changes_nothing_but_when_outputs_leave(clean: list[dict[str, Any]]) -> None:
    gapped = _with_gap(clean, 3000, 2 * DAY)  # two days of silence, then normal traffic
    guarded = _replay(gapped)
    unguarded = _replay(gapped, Settings(clock_max_jump=20 * YEAR))
    assert guarded.read("dead-letter") == []
    # the jump and the events after it waited for the one that made three confirmations
    assert guarded.processor.counters.get("events_held") == SIM_SETTINGS.clock_confirmations
    for topic in ("scores", "feature-log", "examples"):
        assert guarded.read(topic) == unguarded.read(topic), topic
    assert guarded.states == unguarded.states


def test_a_replay_with_gaps_is_byte_identical_run_to_run(clean: list[dict[str, Any]]) -> None:
    gapped = _with_gap(_with_gap(clean, 1500, 3 * DAY), 4500, 3600.0)
    gapped.insert(2500, _view("bad", clean[2500]["user_id"], clean[2500]["ts"] + 3 * DAY + 10 * YEAR))
    runs = [_replay(gapped) for _ in range(2)]
    assert [o.value for o in runs[0].outputs["dead-letter"]] == [o.value for o in runs[1].outputs["dead-letter"]]
    assert len(runs[0].outputs["dead-letter"]) == 1
    assert {t: [o.value for o in v] for t, v in runs[0].outputs.items()} == \
        {t: [o.value for o in v] for t, v in runs[1].outputs.items()}


def test_a_recording_replays_with_its_broker_timestamps() -> None:
    """With broker timestamps (a recording), an event from after its own produce time is refused at once."""
    driver = ReplayDriver(SIM_SETTINGS)
    driver.pipe(_view("e1", "u1", T0), timestamp=T0 + 1)
    driver.pipe(_view("e2", "u1", T0 + 2 * DAY), timestamp=T0 + 2 * DAY + 1)  # quiet, then live again
    driver.pipe(_view("e3", "u1", T0 + 3 * DAY), timestamp=T0 + 2 * DAY + 2)  # produced before it happened
    assert [d["offset"] for d in driver.read("dead-letter")] == [2]
    assert driver.processor.max_ts == {-1: T0 + 2 * DAY}


# ------------------------------------------------------------------------------------- a crash in the middle


class FakeWorker:
    """The worker's batch loop with the broker and RocksDB taken out: outputs, then states, then the clock.

    ``crash_before_clock`` stops a batch after its states are written and before its clock is saved."""

    def __init__(self, settings: Settings, store: dict[str, Any] | None = None) -> None:
        self.processor = Processor.default(settings)
        self.store = store if store is not None else {"states": {}, "pending": {}, "clock": None, "item-deltas": []}
        self.processor.restore_clock(0, self.store["clock"])
        for blob in self.store["item-deltas"]:  # the item table, rebuilt from the topic (streams/worker/items.py)
            assert self.processor.items is not None
            self.processor.items.apply(blob)
        for user_id, blob in self.store["states"].items():  # as index_pending_requests does
            state = decode_state(blob)
            if PENDING in state:
                self.processor.index_pending(0, user_id, state)
        self.outputs: list[Output] = []

    def batch(self, raws: list[tuple[int, bytes]], crash_before_clock: bool = False) -> None:
        states = StateCache(self.store["states"].get, self.store["pending"].get)
        for offset, raw in raws:
            produced = self.processor.process_one(raw, Source("events", 0, offset), states)
            self.outputs.extend(produced)
            self.store["item-deltas"].extend(o.value for o in produced if o.topic == "item-deltas")  # sent first
        for request_id, entry in states.pending.dirty():
            if entry is None:
                self.store["pending"].pop(request_id, None)
            else:
                self.store["pending"][request_id] = entry
        self.store["states"].update(states.dirty())
        if not crash_before_clock:
            self.store["clock"] = self.processor.clock_record(0)


@pytest.mark.parametrize("crash_before_clock", [False, True], ids=["after-the-clock", "before-the-clock"])
def test_held_events_survive_a_crash_and_come_out_once(clean: list[dict[str, Any]], crash_before_clock: bool) -> None:
    """A jump is held across a crash: its events (their offsets committed or not) come out after the restart,
    the same outputs as without the crash; events already decided are not decided again."""
    gapped = _with_gap(clean[:1200], 600, 2 * DAY)
    raws = [(i, orjson.dumps(e)) for i, e in enumerate(gapped)]
    whole = FakeWorker(SIM_SETTINGS)
    for start in range(0, len(raws), 100):
        whole.batch(raws[start:start + 100])

    crashed = FakeWorker(SIM_SETTINGS)
    for start in range(0, 600, 100):
        crashed.batch(raws[start:start + 100])
    crashed.batch(raws[600:602], crash_before_clock=crash_before_clock)  # the jump and one more: held
    assert crashed.processor.clocks[0].held
    store = copy.deepcopy(crashed.store)
    restarted = FakeWorker(SIM_SETTINGS, store)
    redelivered_from = 550  # the last commit was before the crash's batches: some events come again
    for start in range(redelivered_from, len(raws), 100):
        restarted.batch(raws[start:start + 100])
    out = [(o.topic, o.value) for o in crashed.outputs + restarted.outputs]
    assert sorted(set(out)) == sorted(set((o.topic, o.value) for o in whole.outputs))  # none lost
    assert restarted.processor.counters.get("dead_letter") == 0
    examples = [o.value for o in restarted.outputs + crashed.outputs if o.topic == "examples"]
    assert sorted(examples) == sorted(o.value for o in whole.outputs if o.topic == "examples")  # none twice
    assert restarted.store["states"] == whole.store["states"]


# ------------------------------------------------------------------------------------------------- settings


def test_the_clock_settings_have_defaults_variables_and_refusals() -> None:
    s = load_settings({})
    assert (s.clock_max_jump, s.clock_confirmations) == (900.0, 3)
    s = load_settings({"STREAMSCORE_CLOCK_MAX_JUMP": "7200", "STREAMSCORE_CLOCK_CONFIRMATIONS": "5"})
    assert (s.clock_max_jump, s.clock_confirmations) == (7200.0, 5)
    assert ClockRule.from_settings(s) == ClockRule(7200.0, s.user_ttl, 5)
    with pytest.raises(SettingsError, match=r"^STREAMSCORE_CLOCK_MAX_JUMP=30.0 is not valid: expected at least "
                                            r"the allowed lateness \(60 s\)"):
        load_settings({"STREAMSCORE_CLOCK_MAX_JUMP": "30"})
    with pytest.raises(SettingsError, match=r"^STREAMSCORE_CLOCK_CONFIRMATIONS=101 is not valid: expected a whole "
                                            r"number 1\.\.100"):
        load_settings({"STREAMSCORE_CLOCK_CONFIRMATIONS": "101"})
    with pytest.raises(SettingsError, match=r"^STREAMSCORE_CLOCK_CONFIRMATIONS='0' is not valid"):
        load_settings({"STREAMSCORE_CLOCK_CONFIRMATIONS": "0"})
    with pytest.raises(SettingsError, match=r"^STREAMSCORE_CLOCK_MAX_JUMP='-5' is not valid"):
        load_settings({"STREAMSCORE_CLOCK_MAX_JUMP": "-5"})
    rows = {name: (value, source) for name, value, source in
            show_settings(*resolve_settings({"STREAMSCORE_CLOCK_CONFIRMATIONS": "2"}))}
    assert rows["clock_max_jump"] == ("900.0", "default") and rows["clock_confirmations"] == ("2", "environment")


# ------------------------------------------------------------------------------------------------ recordings


def test_streamscore_replay_of_a_recording_uses_its_broker_timestamps_and_partitions(tmp_path: Path) -> None:
    """A recording (``streamscore record``) keeps what the worker saw: the replay judges each partition's
    events by its own clock and by their broker timestamps, twice the same way."""
    events, _ = simulate(users=20, events=400, seed=9)
    produced_ms = 1_764_600_000_000  # the recording was made long after the events happened
    future = _view("from-the-future", events[100]["user_id"], 4_000_000_000.0)  # after it was produced
    records = []
    offsets = [0, 0]
    for i, event in enumerate([*events[:101], future, *events[101:]]):
        key = event["user_id"].encode()
        partition = int(event["user_id"][1:]) % 2  # a user's events in one partition, as the key would put them
        records.append(Recorded("events", partition, offsets[partition], produced_ms + i, key, orjson.dumps(event)))
        offsets[partition] += 1
    where = next((r.partition, r.offset) for r in records if b"from-the-future" in (r.value or b""))
    path = tmp_path / "events.recording.jsonl.gz"
    write_events(path, [r.line() for r in records])
    for out in ("a", "b"):
        assert main(["replay", str(path), "--out", str(tmp_path / out)]) == 0
    dead = [orjson.loads(line) for line in (tmp_path / "a" / "dead_letter.jsonl").read_bytes().splitlines()]
    assert [(d["code"], d["partition"], d["offset"]) for d in dead] == [("bad_time", *where)]
    assert "after the broker received the event" in dead[0]["error"]
    for name in ("dead_letter.jsonl", "examples.jsonl", "feature_log.jsonl", "scores.jsonl", "metrics.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    requests = sum(e["type"] == "request" for e in events)
    assert orjson.loads((tmp_path / "a" / "metrics.json").read_bytes())["requests"] == requests
