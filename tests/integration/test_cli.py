"""The ``streamscore`` command line as a user runs it: one-line errors, and the local broker's lifecycle."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.kafka.broker import free_port
from streams.kafka.kafka_broker import kafka_version
from streams.settings import TOPIC_NAMES

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _env(settings: dict[str, str]) -> dict[str, str]:
    """The user's environment without any STREAMSCORE_* of the caller, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSCORE_")}
    env.update({f"STREAMSCORE_{k.upper()}": v for k, v in settings.items()})
    return env


def streamscore(*args: str, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``streamscore *args`` with ``STREAMSCORE_<NAME>=value`` for each of ``settings``."""
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=REPO, env=_env(settings),
                          capture_output=True, text=True, timeout=90)


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("command", [("worker",), ("topics", "create")])
def test_no_broker_is_one_line_and_status_2(command: tuple[str, ...], tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # bound then released: nothing listens there
    proc = streamscore(*command, settings={"bootstrap": address, "data_dir": str(tmp_path), "web_enabled": "false"})
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert line.startswith("streamscore: ")
    assert address in line
    assert "streamscore broker start" in line


def test_invalid_setting_is_one_line_and_status_2(tmp_path: Path) -> None:
    proc = streamscore("topics", "create", settings={"partitions": "zero", "data_dir": str(tmp_path)})
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert "STREAMSCORE_PARTITIONS" in line and "'zero'" in line
    assert proc.stdout == ""


async def _describe(bootstrap: str) -> tuple[dict[str, str], dict[str, int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "model-snapshots")])
        configs: dict[str, str] = {}
        for response in responses:
            for resource in response.resources:
                error_code, name, entries = resource[0], resource[3], resource[4]
                assert error_code == 0 and name == "model-snapshots"
                configs.update({entry[0]: entry[1] for entry in entries})
        described = await admin.describe_topics(list(TOPIC_NAMES))
        partitions = {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()
    return configs, partitions


def test_kafka_without_its_jars_is_one_line_naming_the_remedy(tmp_path: Path) -> None:
    settings = {"data_dir": str(tmp_path), "kafka_libs": str(tmp_path / "no-jars")}
    proc = streamscore("broker", "start", "--kind", "kafka", "--port", str(free_port()), settings=settings)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = _one_line(proc.stderr)
    assert "make kafka" in line and "--kind noida" in line, line


def test_broker_start_topics_create_and_stop(tmp_path: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    settings = {"data_dir": str(tmp_path / "data"), "bootstrap": bootstrap, "partitions": "3"}
    try:
        started = streamscore("broker", "start", "--port", str(port), settings=settings)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"broker running at {bootstrap}" in started.stdout

        status = streamscore("broker", "status", "--port", str(port), settings=settings)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"at {bootstrap} answers" in status.stdout
        assert status.stdout.startswith(f"kafka {kafka_version()} broker"), status.stdout  # its kind and version

        created = streamscore("topics", "create", settings=settings)
        assert created.returncode == 0, created.stdout + created.stderr
        lines = created.stdout.strip().splitlines()
        assert [line.split()[0] for line in lines] == list(TOPIC_NAMES)
        assert all(line.split()[3] == "created" for line in lines), created.stdout

        again = streamscore("topics", "create", settings=settings)
        assert again.returncode == 0, again.stdout + again.stderr
        assert [line.split()[3] for line in again.stdout.strip().splitlines()] == ["exists"] * len(TOPIC_NAMES)

        configs, partitions = asyncio.run(_describe(bootstrap))
        assert configs.get("cleanup.policy") == "compact"
        assert partitions == {"events": 3, "scores": 3, "feature-log": 3, "examples": 1, "model-snapshots": 1,
                              "metrics": 1, "dead-letter": 1, "item-deltas": 1}

        listed = streamscore("topics", "list", settings=settings)
        assert listed.returncode == 0
        assert set(TOPIC_NAMES) <= set(listed.stdout.split())

        stopped = streamscore("broker", "stop", "--port", str(port), settings=settings)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        after = streamscore("broker", "status", "--port", str(port), settings=settings)
        assert after.returncode == 1
        assert f"no broker answers at {bootstrap}" in after.stdout
    finally:
        streamscore("broker", "stop", "--port", str(port), settings=settings)
