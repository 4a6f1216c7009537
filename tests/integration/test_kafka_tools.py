"""Kafka's own clients as peers: its console producer writes the events, its consumer-groups tool checks our group.

Interoperability checked against the reference implementation, not against our own client: keys and values as
Kafka's tools write them are read by the worker, and the offsets the worker commits are the ones Kafka reports.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import orjson
import pytest

from streams.kafka.kafka_broker import CONSOLE_PRODUCER, CONSUMER_GROUPS, kafka_tool, missing_kafka
from streams.settings import Settings
from streams.tools.simulate import simulate
from tests.fixtures import BrokerUnderTest, WorkerProcess, consume, covers, unique_by_request

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _kafka_tools(broker: BrokerUnderTest) -> None:
    problem = missing_kafka()
    if problem and broker.kind in ("noida", "tansu"):  # a run without Java: `make test` fetched no jars
        pytest.skip(f"Kafka's own tools are not here ({problem})")
    if problem:
        pytest.fail(f"Kafka's tools are missing: {problem}")


def group_lag(settings: Settings) -> dict[int, str]:
    """The LAG column of ``kafka-consumer-groups --describe`` for the events topic, by partition."""
    out = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", settings.bootstrap, "--describe", "--group",
                     settings.app_id)
    lag: dict[int, str] = {}
    for line in out.splitlines():
        columns = line.split()
        if len(columns) >= 6 and columns[0] == settings.app_id and columns[1] == settings.topic("events"):
            lag[int(columns[2])] = columns[5]  # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
    return lag


async def test_console_producer_events_are_scored_and_the_group_reports_lag_zero(
    settings_factory: Callable[..., Settings], worker_factory: Callable[[Settings], WorkerProcess]
) -> None:
    settings = settings_factory(partitions=2)
    events, _ = simulate(users=20, events=400, seed=31)
    lines = b"".join(str(e["user_id"]).encode() + b"\t" + orjson.dumps(e) + b"\n" for e in events)
    kafka_tool(CONSOLE_PRODUCER, "--bootstrap-server", settings.bootstrap, "--topic", settings.topic("events"),
               "--property", "parse.key=true", "--property", "key.separator=\t", "--producer-property", "acks=all",
               stdin=lines)

    worker = worker_factory(settings)
    requests = {str(e["request_id"]) for e in events if e["type"] == "request"}
    scores = await consume(settings.bootstrap, settings.topic("scores"), until=covers(requests), timeout=90,
                           worker=worker)
    assert set(unique_by_request(scores)) == requests
    dead = await consume(settings.bootstrap, settings.topic("dead-letter"), idle=1.0, timeout=5)
    assert dead == [], f"events written by Kafka's console producer were dead-lettered: {dead[:2]}"

    deadline = time.monotonic() + 60
    lag = group_lag(settings)
    while not (set(lag) == {0, 1} and all(v == "0" for v in lag.values())) and time.monotonic() < deadline:
        time.sleep(1.0)  # the worker commits on an interval
        lag = group_lag(settings)
    assert lag == {0: "0", 1: "0"}, f"kafka-consumer-groups reports the worker's group lag as {lag}"
    described = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", settings.bootstrap, "--describe", "--group",
                           settings.app_id, "--members")
    assert re.search(rf"^{re.escape(settings.app_id)}\s+\S+", described, re.M), described
