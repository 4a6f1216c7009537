"""produce a file, record the topic, produce the recording elsewhere: keys and bytes survive, recordings repeat."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.core.topics import TopicSpec
from streams.kafka.admin import create_topics, ping
from streams.settings import Settings
from streams.tools.eventfile import read_events, write_events
from streams.tools.produce import event_key, produce_file
from streams.tools.record import Recorded, UnknownTopic, read_recording, record_topic
from tests.fixtures import produce

pytestmark = pytest.mark.integration

IDLE = 1.0
"""until_idle of the recordings: everything is already in the topic, so any wait would do."""

USERS = ["u0", "u1", "u2", "u3", "u4", "u5"]
MALFORMED = b'{"event_id":"e-bad","user_id":"u1","ts":'


def events_file(path: Path) -> list[bytes]:
    events: list[dict[str, object] | bytes] = [
        {"event_id": f"e{i}", "user_id": USERS[i % len(USERS)], "ts": 1_700_000_000 + i, "type": "view",
         "item_id": f"i{i % 7}", "props": {"note": "café ✓" if i % 5 == 0 else "plain"}}
        for i in range(60)
    ]
    events.insert(17, MALFORMED)
    write_events(path, events)
    return list(read_events(path))


async def one_partition_topic(settings: Settings, name: str) -> str:
    topic = settings.topic_prefix + name
    await create_topics(settings, [TopicSpec(name, topic, 1)])
    return topic


async def test_produce_record_and_produce_the_recording_again(
    settings_factory: Callable[..., Settings], tmp_path: Path,
) -> None:
    settings = settings_factory()
    bootstrap, topic = settings.bootstrap, settings.topic("events")
    lines = events_file(tmp_path / "events.jsonl.gz")

    sent: list[int] = []
    assert await produce_file(bootstrap, tmp_path / "events.jsonl.gz", topic, progress=sent.append) == len(lines)
    assert sent[-1] == len(lines)

    out = tmp_path / "out.jsonl.gz"
    counts: list[int] = []
    assert await record_topic(bootstrap, topic, out, until_idle=IDLE, progress=counts.append) == len(lines)
    assert counts[-1] == len(lines)
    recorded = list(read_recording(out))
    assert {r.partition for r in recorded} == {0, 1}, "the users should span both partitions"
    assert recorded == sorted(recorded, key=Recorded.sort_key)
    # every line came back, exact bytes, keyed by its user; the malformed one with no key
    assert Counter((r.key, r.value) for r in recorded) == Counter((event_key(line), line) for line in lines)
    assert [r.key for r in recorded if r.value == MALFORMED] == [None]
    # in order: each user's events as in the file (a user lives on one partition, which keeps order)
    for user in USERS:
        key = user.encode()
        assert [r.value for r in recorded if r.key == key] == [line for line in lines if event_key(line) == key]

    again = tmp_path / "again.jsonl.gz"
    assert await record_topic(bootstrap, topic, again, until_idle=IDLE) == len(lines)
    assert again.read_bytes() == out.read_bytes()

    copy_topic = await one_partition_topic(settings, "copy")
    assert await produce_file(bootstrap, out, copy_topic) == len(lines)
    copy = tmp_path / "copy.jsonl"
    assert await record_topic(bootstrap, copy_topic, copy, until_idle=IDLE) == len(lines)
    # one partition: the copy is in the recording's order, keys kept (the malformed line's absent key too)
    assert [(r.key, r.value) for r in read_recording(copy)] == [(r.key, r.value) for r in recorded]


async def test_recording_from_the_end_keeps_only_what_arrives(
    settings_factory: Callable[..., Settings], tmp_path: Path,
) -> None:
    settings = settings_factory()
    bootstrap = settings.bootstrap
    topic = await one_partition_topic(settings, "live")
    await produce(bootstrap, topic, [(b"old", b"before recording")])

    receiving = asyncio.Event()
    out = tmp_path / "live.jsonl"
    # a producer started up front, so the last records follow the probes within far less than the idle time
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        recording = asyncio.create_task(record_topic(bootstrap, topic, out, from_beginning=False, until_idle=2.0,
                                                     progress=lambda n: receiving.set()))
        # the recorder positions itself at the end in its own time: probe until it is seen to receive
        probes = 0
        while not receiving.is_set():
            if recording.done():
                pytest.fail(f"the recorder stopped before receiving anything: {recording.result()}")
            await producer.send_and_wait(topic, key=b"probe", value=b"%d" % probes)
            probes += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiving.wait(), 0.2)
        await asyncio.gather(*[await producer.send(topic, key=key, value=value)
                               for key, value in [(b"new", b"one"), (None, b"two")]])
    finally:
        await producer.stop()
    count = await recording

    values = [(r.key, r.value) for r in read_recording(out)]
    assert count == len(values)
    assert (b"old", b"before recording") not in values
    assert values[-2:] == [(b"new", b"one"), (None, b"two")]
    assert all(key == b"probe" for key, _ in values[:-2])


async def test_missing_topics_are_refused_not_created(
    settings_factory: Callable[..., Settings], tmp_path: Path,
) -> None:
    settings = settings_factory()
    missing = settings.topic_prefix + "nowhere"
    path = tmp_path / "ev.jsonl"
    write_events(path, [{"event_id": "e1", "user_id": "u1", "ts": 1.0, "type": "view"}])
    with pytest.raises(UnknownTopic, match="nowhere"):
        await produce_file(settings.bootstrap, path, missing)
    with pytest.raises(UnknownTopic, match="nowhere"):
        await record_topic(settings.bootstrap, missing, tmp_path / "out.jsonl")
    assert missing not in await ping(settings.bootstrap)
    assert not (tmp_path / "out.jsonl").exists()
