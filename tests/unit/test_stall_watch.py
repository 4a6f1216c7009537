"""The stall watch's parts that need no broker (the watch itself runs live in tests/integration/test_recovery.py)."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError

from streams.kafka.fetch import OffsetsReader
from streams.worker.stallwatch import StallDetector


async def test_an_unreachable_broker_fails_a_check_and_the_reader_connects_afresh_next_time() -> None:
    reader = OffsetsReader("127.0.0.1:1")  # nothing listens there
    for _ in range(2):  # a failed check leaves no half-started consumer behind
        with pytest.raises(KafkaConnectionError):
            await reader.bounds("events", [0])
        assert reader.consumer is None
    await reader.stop()


def test_a_partition_that_keeps_progressing_or_has_nothing_waiting_never_stalls() -> None:
    detector = StallDetector(after=10.0)
    assert not any(detector.observe(t, 0, due=t, earliest=0, end=10_000) for t in range(0, 100, 5))
    assert not any(detector.observe(t, 1, due=50, earliest=0, end=50) for t in range(0, 100, 5))


def test_a_stall_is_reported_at_every_check_until_its_clock_restarts() -> None:
    detector = StallDetector(after=10.0)
    seen = [t for t in range(0, 41) if detector.observe(t, 0, due=3, earliest=0, end=9)]
    assert seen[0] == 10 and len(seen) == 31  # stalled from 10 s on, until someone restarts its clock
    detector.restart(0)
    assert not detector.observe(41, 0, due=3, earliest=0, end=9)
    assert detector.observe(51, 0, due=3, earliest=0, end=9)
