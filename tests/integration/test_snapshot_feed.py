"""Every worker follows the snapshot topic: it swaps to signed, newer models and refuses the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from models.experiment import scorer_from_settings
from models.registry import build
from models.snapshots import dump_snapshot
from streams.core.counters import Counters
from streams.core.snapshots import SnapshotFeed
from streams.settings import Settings
from streams.worker.feeds import follow_snapshots
from tests.fixtures import produce

pytestmark = pytest.mark.integration

X = {"cand_position": 0.0, "price": 2.0}


def trained_prod(examples: int) -> object:
    model = build("prod")
    for i in range(examples):
        model.learn_one({"cand_position": float(i % 3), "price": 1.0 + i % 5}, i % 3 == 0)
    return model


async def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_scorer_swaps_to_signed_snapshots_and_refuses_tampered_ones(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(models="prod,baseline", arms="A:prod:1")
    key = settings.snapshot_key.encode()
    topic = settings.topic("model-snapshots")
    signed = trained_prod(30)
    forged = trained_prod(3)
    genuine = dump_snapshot(forged, name="prod", version=50, key=key)
    tampered = genuine[:-40] + bytes([genuine[-40] ^ 0xFF]) + genuine[-39:]  # a byte of the pickle flipped
    await produce(settings.bootstrap, topic, [
        (b"__learner__", b"the learner's own state"),
        (b"prod", dump_snapshot(signed, name="prod", version=1, key=key, meta={"examples": 30})),
        (b"prod", tampered),
    ])

    scorer = scorer_from_settings(settings)
    feed = SnapshotFeed(scorer, key, Counters())
    stop = asyncio.Event()
    follower = asyncio.create_task(follow_snapshots(settings.bootstrap, topic, feed, stop))
    try:
        await wait_for(lambda: sum(feed.counters.snapshot().values()) >= 3)
        assert feed.counters.snapshot() == {"snapshots_ignored": 1, "snapshots_refused": 1, "snapshots_swapped": 1}
        assert scorer.versions == {"prod": 1, "baseline": 0}
        served = scorer.score_one("u1", [X])
        assert (served.model, served.model_version) == ("prod", 1)
        assert served.served == [signed.predict_proba_one(X)[True]]  # type: ignore[attr-defined]
        assert served.served != [0.5]  # not the untrained model

        # While following: a newer signed snapshot is served by the next request, without a restart.
        newer = trained_prod(60)
        await produce(settings.bootstrap, topic, [(b"prod", dump_snapshot(newer, name="prod", version=2, key=key))])
        await wait_for(lambda: scorer.versions["prod"] == 2)
        assert scorer.score_one("u1", [X]).served == [newer.predict_proba_one(X)[True]]  # type: ignore[attr-defined]
    finally:
        stop.set()
        await asyncio.wait_for(follower, 10)
    assert feed.counters.get("snapshot_feed_errors") == 0
