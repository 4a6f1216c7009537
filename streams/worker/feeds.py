"""What every worker follows besides its events: the model snapshots and the learner's reports.

Each follower runs as a faust app task, which faust starts on every worker (not only the leader) once the
tables are recovered, which is what is wanted here; each stops when the app shuts down. The followers take the
faust app and what they feed, not the whole worker, so nothing here imports ``streams/worker/app.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from features.itemvectors import ItemVectorTable
from models.scorer import Scorer
from streams.core.counters import Counters
from streams.core.snapshots import SnapshotFeed
from streams.kafka.follow import follow_topic
from streams.ops.reports import LearnerReports
from streams.settings import Settings

__all__ = ["follow_snapshots", "register_metrics_feed", "register_snapshot_feed", "run_on_every_worker"]


async def follow_snapshots(bootstrap: str, topic: str, feed: SnapshotFeed, stop: asyncio.Event) -> None:
    """Apply every record of ``topic`` to ``feed``, from the beginning, until ``stop`` is set (every worker
    reads every snapshot: see :func:`~streams.kafka.follow.follow_topic`; errors count in ``snapshot_feed_errors``)."""
    await follow_topic(bootstrap, topic, lambda record: feed.apply_one(record.key, record.value or b""), stop,
                       feed.counters, "snapshot_feed_errors")


def run_on_every_worker(app: faust.App, follow: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``follow(stop)`` as an app task on every worker; set ``stop`` when the app shuts down."""
    stop = asyncio.Event()

    @app.task
    async def follow_until_shutdown() -> None:
        stop.clear()  # the app may be started again after a stop (tests, restarts within one process)
        await follow(stop)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode's stub wants a positional signal
    async def stop_following(sender: Any, **kwargs: Any) -> None:
        stop.set()


def register_snapshot_feed(app: faust.App, settings: Settings, scorer: Scorer, counters: Counters,
                           item_vectors: ItemVectorTable | None = None) -> SnapshotFeed:
    """Make every worker follow the snapshot topic: models swap in ``scorer``, item vectors go to
    ``item_vectors``, outcomes count in ``counters`` (served at ``/counters/``)."""
    feed = SnapshotFeed(scorer, settings.snapshot_key.encode(), counters, item_vectors)
    topic = settings.topic("model-snapshots")
    run_on_every_worker(app, lambda stop: follow_snapshots(settings.bootstrap, topic, feed, stop))
    return feed


def register_metrics_feed(app: faust.App, settings: Settings, reports: LearnerReports, counters: Counters) -> None:
    """Make every worker follow the learner's reports (errors count in ``counters``)."""
    topic = settings.topic("metrics")
    run_on_every_worker(app, lambda stop: follow_topic(
        settings.bootstrap, topic,
        lambda record: reports.apply_one(record.key, record.value or b"", record.timestamp / 1000),
        stop, counters, "metrics_feed_errors"))
