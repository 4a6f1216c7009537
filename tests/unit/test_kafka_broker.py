"""The Kafka broker's configuration and the checks that say, in one line, why it cannot start here."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streams.kafka.broker import DEFAULT_KIND, KINDS, BrokerError, local_broker
from streams.kafka.kafka_broker import KafkaBroker, java_major, kafka_version, missing_kafka, server_properties


def fake_java(tmp_path: Path, version_line: str) -> Path:
    """A ``java`` that prints what a JDK prints for ``-version`` (on stderr, as java does)."""
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


@pytest.mark.parametrize(("line", "major"), [
    ('openjdk version "17.0.15" 2025-04-15', 17),
    ('openjdk version "25" 2025-09-16', 25),
    ('java version "1.8.0_392"', 8),
    ("no version here", None),
])
def test_java_major(tmp_path: Path, line: str, major: int | None) -> None:
    assert java_major(str(fake_java(tmp_path, line) / "bin" / "java")) == major


def test_old_java_is_named_with_the_remedy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, 'java version "1.8.0_392"')))
    problem = missing_kafka()
    assert problem is not None and "Java 17" in problem and "Java 8" in problem and "--kind noida" in problem


def test_missing_jars_are_named_with_the_remedy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15')))
    monkeypatch.setenv("STREAMSCORE_KAFKA_LIBS", str(tmp_path / "empty"))
    problem = missing_kafka()
    assert problem is not None and "make kafka" in problem and "--kind noida" in problem
    with pytest.raises(BrokerError, match="make kafka"):
        local_broker("kafka", tmp_path / "data", 9092).start()


def test_version_comes_from_the_broker_jar(tmp_path: Path) -> None:
    assert kafka_version(tmp_path) is None
    for name in ("kafka-clients-4.4.0.jar", "kafka_2.13-4.4.0.jar", "kafka-tools-4.4.0.jar"):
        (tmp_path / name).touch()
    assert kafka_version(tmp_path) == "4.4.0"


def test_one_kraft_node_on_loopback_with_laptop_settings(tmp_path: Path) -> None:
    props = dict(line.split("=", 1) for line in server_properties(tmp_path, 19092, 19093).splitlines() if line)
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["log.dirs"] == str(tmp_path / "logs")
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for internal in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
        assert props[f"{internal}.replication.factor"] == "1"


def test_a_data_dir_keeps_its_port(tmp_path: Path) -> None:
    first = KafkaBroker(tmp_path, 19092)
    first.data_dir.mkdir(parents=True, exist_ok=True)
    first._configure()
    assert "127.0.0.1:19092" in (tmp_path / "server.properties").read_text()
    KafkaBroker(tmp_path, 19092)._configure()  # the same port: fine, the file stays
    for other in (19999, 1909):  # 1909 is a prefix of 19092: the whole line must match
        with pytest.raises(BrokerError, match="another port"):
            KafkaBroker(tmp_path, other)._configure()


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BrokerError, match="already listens"):
            KafkaBroker(tmp_path, port).start()
    assert not (tmp_path / "kafka.pid").exists()


def test_kafka_is_the_default_kind() -> None:
    assert DEFAULT_KIND == "kafka" and set(KINDS) == {"kafka", "noida", "tansu"}
    assert not KafkaBroker(Path("/nonexistent"), 1).is_running()
