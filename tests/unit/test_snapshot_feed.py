import asyncio
import logging
import pickle
import sys

import pytest

from models.baseline import SmoothedCTR
from models.scorer import Scorer
from models.snapshots import dump_snapshot
from streams.core.counters import Counters
from streams.core.snapshots import SnapshotFeed
from streams.settings import Settings
from streams.worker import _faust
from streams.worker.feeds import follow_snapshots, register_snapshot_feed

KEY = b"feed-test-key"
VECTORS = [{"cand_position": 0.0}]


class Gone:
    """Pickled while it exists, then removed: a signed snapshot this code can no longer load."""


def baseline_with(clicks: int, impressions: int) -> SmoothedCTR:
    model = SmoothedCTR(key="cand_position", prior_mean=0.1, prior_weight=20.0)
    for i in range(impressions):
        model.learn_one({"cand_position": 0.0}, i < clicks)
    return model


def serve_baseline(user_id: str) -> tuple[str, str]:
    return ("B", "baseline")


@pytest.fixture
def feed() -> SnapshotFeed:
    return SnapshotFeed(Scorer.fresh(["prod", "baseline"], serve_baseline), KEY, Counters())


def test_a_signed_newer_snapshot_is_served_by_the_next_request(feed):
    before = feed.scorer.score_one("u", VECTORS)
    assert (before.model_version, before.served) == (0, [pytest.approx(0.1)])  # fresh: the prior mean

    blob = dump_snapshot(baseline_with(2, 10), name="baseline", version=3, key=KEY)
    assert feed.apply_one(b"baseline", blob) == "swapped"

    after = feed.scorer.score_one("u", VECTORS)
    assert (after.model, after.model_version) == ("baseline", 3)
    assert after.served == [pytest.approx((2 + 20 * 0.1) / (10 + 20))]
    assert feed.scorer.versions == {"prod": 0, "baseline": 3}
    assert feed.counters.snapshot() == {"snapshots_swapped": 1}


def test_older_or_equal_versions_are_stale_and_change_nothing(feed):
    first = dump_snapshot(baseline_with(1, 10), name="baseline", version=5, key=KEY)
    assert feed.apply_one("baseline", first) == "swapped"
    served = feed.scorer.models["baseline"]
    for version in (5, 4):
        blob = dump_snapshot(baseline_with(9, 10), name="baseline", version=version, key=KEY)
        assert feed.apply_one("baseline", blob) == "stale"
    assert feed.scorer.models["baseline"] is served
    assert feed.scorer.score_one("u", VECTORS).served == [pytest.approx(3 / 30)]  # (1 + 2) / (10 + 20)
    assert feed.counters.snapshot() == {"snapshots_stale": 2, "snapshots_swapped": 1}


def test_a_tampered_snapshot_is_refused_logged_and_counted(feed, caplog):
    good = dump_snapshot(baseline_with(2, 10), name="baseline", version=1, key=KEY)
    feed.apply_one(b"baseline", good)
    served = feed.scorer.models["baseline"]
    evil = dump_snapshot(baseline_with(10, 10), name="baseline", version=99, key=KEY)
    tampered = evil[:40] + bytes([evil[40] ^ 1]) + evil[41:]

    with caplog.at_level(logging.WARNING, logger="streams.core.snapshots"):
        assert feed.apply_one(b"baseline", tampered) == "refused"
    assert feed.scorer.models["baseline"] is served
    assert feed.scorer.score_one("u", VECTORS).model_version == 1
    assert feed.counters.get("snapshots_refused") == 1
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "refused a snapshot of baseline (bad signature)" in warning.getMessage()
    assert "still serving version 1" in warning.getMessage()


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"not a snapshot at all", "unknown format"),
        (b"", "unknown format"),
        (pickle.dumps(SmoothedCTR()), "unsigned"),
        (dump_snapshot(SmoothedCTR(), name="baseline", version=2, key=b"another key"), "bad signature"),
        (dump_snapshot(SmoothedCTR(), name="baseline", version=2, key=KEY)[:-5], "truncated"),
        (dump_snapshot(SmoothedCTR(), name="prod", version=2, key=KEY), "name mismatch"),
        (dump_snapshot({"w": 1.0}, name="baseline", version=2, key=KEY), "not a classifier"),
    ],
)
def test_unverifiable_or_unusable_snapshots_are_refused(feed, caplog, blob, reason):
    with caplog.at_level(logging.WARNING, logger="streams.core.snapshots"):
        assert feed.apply_one(b"baseline", blob) == "refused"
    assert feed.scorer.versions == {"prod": 0, "baseline": 0}
    assert feed.counters.snapshot() == {"snapshots_refused": 1}
    assert f"({reason})" in caplog.records[-1].getMessage()


def test_a_signed_snapshot_this_code_cannot_unpickle_is_refused(feed, monkeypatch, caplog):
    blob = dump_snapshot(Gone(), name="baseline", version=2, key=KEY)
    monkeypatch.delattr(sys.modules[__name__], "Gone")
    with caplog.at_level(logging.WARNING, logger="streams.core.snapshots"):
        assert feed.apply_one(b"baseline", blob) == "refused"
    assert "(unloadable): AttributeError" in caplog.records[-1].getMessage()
    assert feed.scorer.versions["baseline"] == 0


def test_records_that_are_not_live_models_are_ignored_unread(feed, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("load_snapshot called for an ignored record")

    monkeypatch.setattr("streams.core.snapshots.load_snapshot", no_loading)
    learner_state = dump_snapshot({"state": 1}, name="__learner__", version=7, key=KEY)
    assert feed.apply_one(b"__learner__", learner_state) == "ignored"
    assert feed.apply_one(b"gbm", b"whatever") == "ignored"
    assert feed.apply_one(None, b"whatever") == "ignored"
    assert feed.apply_one(b"\xff\xfe", b"whatever") == "ignored"
    assert feed.counters.snapshot() == {"snapshots_ignored": 4}


def test_an_empty_key_is_refused_up_front():
    with pytest.raises(ValueError, match="STREAMSCORE_SNAPSHOT_KEY"):
        SnapshotFeed(Scorer.fresh(["prod"]), b"")


async def test_follow_snapshots_survives_an_unreachable_broker_and_stops_when_told(feed):
    stop = asyncio.Event()
    task = asyncio.create_task(follow_snapshots("127.0.0.1:1", "model-snapshots", feed, stop))
    await asyncio.sleep(0.3)
    assert not task.done()  # the failed connection was logged and is being retried, not raised
    stop.set()
    await asyncio.wait_for(task, 5)
    assert feed.counters.get("snapshot_feed_errors") >= 1


async def test_register_snapshot_feed_adds_a_task_that_app_shutdown_stops(tmp_path):
    from streams.worker.app import create_app

    stream_app = create_app(Settings(bootstrap="127.0.0.1:1", data_dir=tmp_path, web_enabled=False))
    tasks_before = len(_faust.app_tasks(stream_app.app))
    processor = stream_app.processor
    feed = register_snapshot_feed(stream_app.app, stream_app.settings, processor.scorer, processor.counters)
    assert feed.scorer is stream_app.processor.scorer
    assert feed.counters is stream_app.processor.counters
    assert feed.key == b"streamscore-dev-key"
    [task_fn] = _faust.app_tasks(stream_app.app)[tasks_before:]

    task = asyncio.ensure_future(task_fn())
    await asyncio.sleep(0.3)
    assert not task.done()
    await stream_app.app.on_before_shutdown.send()
    await asyncio.wait_for(task, 5)
