"""Topic declarations: partitions by key, compaction, names from the settings."""

from __future__ import annotations

from streams.core.topics import TopicSpec, spec_for, topic_specs
from streams.settings import TOPIC_NAMES, Settings, load_settings

# Compacted (the newest snapshot per model wins), and room for the learner's checkpoint (64 MiB).
SNAPSHOT_CONFIG = {"cleanup.policy": "compact", "max.message.bytes": "67108864"}


def test_every_logical_topic_once_in_design_order() -> None:
    specs = topic_specs(Settings())
    assert [s.logical for s in specs] == list(TOPIC_NAMES)
    assert [s.name for s in specs] == list(TOPIC_NAMES)


def test_partitions_and_configs() -> None:
    specs = {s.logical: s for s in topic_specs(Settings(partitions=6))}
    assert specs == {
        "events": TopicSpec("events", "events", 6, {}),
        "scores": TopicSpec("scores", "scores", 6, {}),
        "feature-log": TopicSpec("feature-log", "feature-log", 6, {}),
        "examples": TopicSpec("examples", "examples", 1, {}),
        "model-snapshots": TopicSpec("model-snapshots", "model-snapshots", 1, SNAPSHOT_CONFIG),
        "metrics": TopicSpec("metrics", "metrics", 1, {}),
        "dead-letter": TopicSpec("dead-letter", "dead-letter", 1, {}),
        # One partition (one order for every follower); kept 14 half-lives of the item table's decay.
        "item-deltas": TopicSpec("item-deltas", "item-deltas", 1, {"retention.ms": str(14 * 86400 * 1000)}),
    }


def test_user_keyed_topics_follow_the_partition_setting() -> None:
    for n in (1, 2, 17):
        by_name = {s.logical: s.partitions for s in topic_specs(Settings(partitions=n))}
        assert by_name == {"events": n, "scores": n, "feature-log": n, "examples": 1, "model-snapshots": 1,
                           "metrics": 1, "dead-letter": 1, "item-deltas": 1}


def test_names_follow_prefix_and_overrides() -> None:
    settings = load_settings({"STREAMSCORE_TOPIC_PREFIX": "demo.", "STREAMSCORE_TOPIC_DEAD_LETTER": "dlq",
                              "STREAMSCORE_PARTITIONS": "3"})
    assert [(s.logical, s.name, s.partitions) for s in topic_specs(settings)] == [
        ("events", "demo.events", 3), ("scores", "demo.scores", 3), ("feature-log", "demo.feature-log", 3),
        ("examples", "demo.examples", 1), ("model-snapshots", "demo.model-snapshots", 1),
        ("metrics", "demo.metrics", 1), ("dead-letter", "dlq", 1), ("item-deltas", "demo.item-deltas", 1),
    ]
    assert spec_for(settings, "model-snapshots") == TopicSpec(
        "model-snapshots", "demo.model-snapshots", 1, SNAPSHOT_CONFIG)


def test_configs_are_not_shared_between_specs() -> None:
    a = spec_for(Settings(), "model-snapshots")
    a.config["retention.ms"] = "1"
    assert spec_for(Settings(), "model-snapshots").config == SNAPSHOT_CONFIG
