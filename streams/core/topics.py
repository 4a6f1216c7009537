"""The topics of DESIGN.md, declared once: partitions and configs. Names come from the settings.

>>> from streams.settings import Settings
>>> [(t.name, t.partitions, t.config) for t in topic_specs(Settings(partitions=3))][:2]
[('events', 3, {}), ('scores', 3, {})]
>>> spec_for(Settings(), "model-snapshots").config
{'cleanup.policy': 'compact', 'max.message.bytes': '67108864'}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.core.records import COMPACTED, ITEM_DELTAS, MODEL_SNAPSHOTS, TOPIC_NAMES, USER_KEYED
from streams.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    logical: str
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024
"""Largest record of ``model-snapshots``: a model, or the learner's checkpoint (brokers default to ~1 MB)."""


ITEM_RETENTION_HALF_LIVES = 14


def spec_for(settings: Settings, logical: str) -> TopicSpec:
    # The others get one partition: one order, so the learner sees examples in a single, replayable order.
    partitions = settings.partitions if logical in USER_KEYED else 1
    config = {"cleanup.policy": "compact"} if logical in COMPACTED else {}
    if logical == MODEL_SNAPSHOTS:
        config["max.message.bytes"] = str(MAX_SNAPSHOT_BYTES)
    if logical == ITEM_DELTAS:
        # A restarted worker rebuilds its item table from what is kept: 14 half-lives leave every older delta
        # with less than 1e-4 of its weight (docs/items.md).
        config["retention.ms"] = str(int(ITEM_RETENTION_HALF_LIVES * settings.item_half_life * 1000))
    return TopicSpec(logical, settings.topic(logical), partitions, config)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    return [spec_for(settings, logical) for logical in TOPIC_NAMES]
