"""docker-compose.yml (never started here): the services, KRaft, and settings that streamscore really reads."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.core.topics import topic_specs
from streams.settings import ENV_PREFIX, TOPIC_NAMES, Settings, load_settings, to_env

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def valid_variables() -> set[str]:
    """Every STREAMSCORE_* name load_settings reads, derived from the settings themselves."""
    plain = set(to_env(Settings()))
    assert plain == {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings) if f.name != "topic_overrides"}
    per_topic = set(to_env(Settings(topic_overrides={t: "x" for t in TOPIC_NAMES}))) - plain
    assert len(per_topic) == len(TOPIC_NAMES)
    return plain | per_topic


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """'NAME://host:port,...' as {NAME: (host, port)}."""
    out = {}
    for item in value.split(","):
        name, address = item.strip().split("://")
        host, port = address.rsplit(":", 1)
        out[name] = (host, int(port))
    return out


def published(port: str) -> tuple[str, int, int]:
    """A short-syntax port 'host_ip:host_port:container_port' as its three parts."""
    parts = str(port).split(":")
    assert len(parts) == 3, f"{port!r} does not name the host address it binds to"
    return parts[0], int(parts[1]), int(parts[2])


def test_services_exist() -> None:
    assert {"kafka", "topics", "worker"} <= set(SERVICES)


def test_kafka_is_apache_kafka_pinned() -> None:
    assert re.fullmatch(r"apache/kafka:[34]\.\d+\.\d+", SERVICES["kafka"]["image"])


def test_kafka_is_the_version_the_tests_run() -> None:
    pom = (ROOT / "broker" / "pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert match, "broker/pom.xml names no kafka.version"
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{match.group(1)}"


def test_kafka_runs_one_kraft_node() -> None:
    env = environment("kafka")
    assert not any("ZOOKEEPER" in k for k in env)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == 1
    voter_id, voter_address = voters[0].split("@")
    assert voter_id == node_id
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert listeners(env["KAFKA_LISTENERS"])[controller][1] == int(voter_address.rsplit(":", 1)[1])
    assert controller not in listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols) == set(listeners(env["KAFKA_LISTENERS"]))
    # One node: internal topics cannot ask for more replicas than there are brokers.
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"


def test_kafka_listens_for_containers_and_for_the_host() -> None:
    env = environment("kafka")
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    bound = listeners(env["KAFKA_LISTENERS"])
    assert ("kafka", 9092) in advertised.values()
    host_side = [(name, port) for name, (host, port) in advertised.items() if host in ("localhost", "127.0.0.1")]
    assert len(host_side) == 1
    name, port = host_side[0]
    assert bound[name][1] == port
    assert ("127.0.0.1", port, port) in [published(p) for p in SERVICES["kafka"]["ports"]]


def test_kafka_has_a_healthcheck_and_the_others_wait_for_it() -> None:
    check = SERVICES["kafka"]["healthcheck"]
    assert "/opt/kafka/bin/" in " ".join(check["test"]) and check["retries"] >= 1
    assert SERVICES["topics"]["depends_on"]["kafka"] == {"condition": "service_healthy"}
    assert SERVICES["worker"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "topics": {"condition": "service_completed_successfully"},
    }


def test_topics_then_worker_from_the_repo_image() -> None:
    assert SERVICES["topics"]["command"] == ["topics", "create"]
    assert SERVICES["worker"]["command"] == ["worker"]
    for service in ("topics", "worker"):
        assert SERVICES[service]["build"] == "."
        assert "entrypoint" not in SERVICES[service]
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.M)
    assert re.search(r"^RUN pip install \.", DOCKERFILE, re.M)
    assert re.search(r'^ENTRYPOINT \["streamscore"\]$', DOCKERFILE, re.M)


def test_every_streamscore_variable_is_a_real_setting() -> None:
    used = set(re.findall(r"\b" + ENV_PREFIX + r"[A-Z0-9_]+", COMPOSE_TEXT + DOCKERFILE))
    assert {"STREAMSCORE_BOOTSTRAP", "STREAMSCORE_PARTITIONS", "STREAMSCORE_DATA_DIR", "STREAMSCORE_WEB_HOST"} <= used
    assert used <= valid_variables(), f"not settings: {sorted(used - valid_variables())}"


@pytest.mark.parametrize("service", ["topics", "worker"])
def test_streamscore_is_configured_only_by_its_variables(service: str) -> None:
    env = environment(service)
    assert env
    assert set(env) <= valid_variables()
    load_settings(env)


def test_worker_settings() -> None:
    env = environment("worker")
    settings = load_settings(env)
    kafka = listeners(environment("kafka")["KAFKA_ADVERTISED_LISTENERS"])
    host, port = settings.bootstrap.rsplit(":", 1)
    assert host == "kafka"
    assert (host, int(port)) in kafka.values()
    assert settings.web_enabled and settings.web_host == "0.0.0.0"
    assert [published(p) for p in SERVICES["worker"]["ports"]] == [("127.0.0.1", settings.web_port,
                                                                     settings.web_port)]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["worker"]["volumes"]}
    assert str(settings.data_dir) in mounts
    assert mounts[str(settings.data_dir)] in COMPOSE["volumes"]


def test_topics_and_worker_agree_on_the_topics() -> None:
    topics, worker = load_settings(environment("topics")), load_settings(environment("worker"))
    assert topic_specs(topics) == topic_specs(worker)
    assert (topics.bootstrap, topics.replication, topics.app_id) == (worker.bootstrap, worker.replication,
                                                                     worker.app_id)


def test_every_published_port_binds_to_loopback() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert published(port)[0] == "127.0.0.1", f"{name} publishes {port!r} on every interface"
