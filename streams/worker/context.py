"""What every part of the worker shares: the faust app, its tables and topics, the processor, the telemetry.

Its own module so that the batch loop (``batch.py``), the views (``views.py``) and the app that wires them
(``app.py``) all name it without importing each other.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TopicT

from streams.core.expiry import ExpirySweeper
from streams.core.processor import Processor
from streams.core.statecache import StateCache
from streams.ops.reports import LearnerReports
from streams.ops.telemetry import WorkerTelemetry
from streams.settings import Settings

__all__ = ["StreamApp", "Unsaved"]


@dataclass
class Unsaved:
    """What the worker processed since its last checkpoint (``streams/worker/batch.py``)."""

    partitions: set[int] = field(default_factory=set)
    deliveries: list[asyncio.Future[Any]] = field(default_factory=list)
    """The outputs sent, each resolving once the broker has it."""


@dataclass
class StreamApp:
    app: faust.App
    settings: Settings
    processor: Processor
    topics: dict[str, TopicT]
    user_state: Any  # faust.Table
    pending: Any  # faust.Table
    sweeper: ExpirySweeper
    telemetry: WorkerTelemetry
    reports: LearnerReports
    """The learner's reports, followed from the ``metrics`` topic."""
    indexed_partitions: set[int] = field(default_factory=set)
    """Partitions whose waiting requests are in the processor's deadline index."""
    unsaved: Unsaved = field(default_factory=Unsaved)
    checkpoints: int = 0
    """Checkpoints taken so far: each one's sequence number (``streams/core/statecache.py``)."""
    last_checkpoint: asyncio.Future[None] | None = None
    """The newest checkpoint's write, which waits for the ones before it."""
    states: dict[int, StateCache] = field(default_factory=dict)
    """Per owned partition, its decoded user states and waiting requests (``streams/core/statecache.py``)."""
    topic_names: dict[str, str] = field(default_factory=dict)
    """The broker's name of each logical topic (``Settings.topic``), looked up once per record sent."""
    first_offsets: dict[int, int] = field(default_factory=dict)
    """For a partition without a saved clock, the offset its first record must have (its earliest): a first
    record after it means the consumer skipped some (``streams/core/gaps.py``)."""
