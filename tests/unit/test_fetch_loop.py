"""The fetch loop's rewinds (``streams/worker/_faust.py``): records a rebalance made it drop are read again,
only where the consumer's position is past them, and only for partitions still assigned."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.worker._faust import _FetchLoop

EVENTS = "events"


class FakeConsumer:
    """What the rewinds touch of faust's consumer: its assignment, positions and seeks."""

    def __init__(self, assigned: set[TP], positions: dict[TP, int]) -> None:
        self.assigned = assigned
        self.positions = positions
        self.seeks: list[dict[TP, int]] = []
        self.flow_active = True

    def assignment(self) -> set[TP]:
        return self.assigned

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.append(dict(partitions))
        self.positions.update(partitions)


def _loop(consumer: FakeConsumer) -> _FetchLoop:
    async def nothing(*args: Any) -> None:
        return None
    return _FetchLoop(consumer, EVENTS, nothing, nothing, batch_size=10, checkpoint_every=1.0)  # type: ignore[arg-type]


def _records(*offsets: int) -> list[Any]:
    return [SimpleNamespace(offset=o) for o in offsets]


async def test_dropped_records_of_the_topic_are_read_again_from_the_first_one() -> None:
    tp0, tp1, other = TP(EVENTS, 0), TP(EVENTS, 1), TP("model-snapshots", 0)
    consumer = FakeConsumer({tp0, tp1, other}, {tp0: 66, tp1: 36, other: 9})
    loop = _loop(consumer)
    loop._dropped({tp0: _records(10, 11, 12), tp1: _records(30, 31), other: _records(7, 8)})
    loop._dropped({tp0: _records(5, 6)})  # a second drop of earlier records: the earliest wins
    await loop._apply_rewinds()
    assert consumer.seeks == [{tp0: 5, tp1: 30}]  # other topics go faust's way
    assert loop.rewinds == {}


async def test_a_rewind_never_moves_forward_and_skips_partitions_no_longer_assigned() -> None:
    kept, revoked, behind = TP(EVENTS, 0), TP(EVENTS, 1), TP(EVENTS, 2)
    consumer = FakeConsumer({kept, behind}, {kept: 40, behind: 3})
    loop = _loop(consumer)
    for tp in (kept, revoked, behind):
        loop.rewind(tp, 12)
    await loop._apply_rewinds()
    # behind is at 3: seeking it to 12 would skip 3-11. revoked belongs to another worker now.
    assert consumer.seeks == [{kept: 12}]


async def test_no_rewinds_means_no_seek() -> None:
    consumer = FakeConsumer({TP(EVENTS, 0)}, {TP(EVENTS, 0): 5})
    loop = _loop(consumer)
    await loop._apply_rewinds()
    assert consumer.seeks == []
