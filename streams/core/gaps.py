"""Offsets the consumer skipped: the records a worker must read again before the one that revealed the gap.

A partition's event clock knows the last offset its worker decided (``streams/core/eventclock.py``), and it is
saved with the states, so the next record a worker sees should be the one after it. faust 0.15.3 can hand over
a partition and skip records of it: when a rebalance abandons a fetch half delivered, it relies on seeking back
to the group's committed offset, and a partition with no committed offset yet (its worker died within its first
commit interval) is not moved back, so the records of the abandoned fetch are never delivered. Seen on Kafka in
``tests/integration/test_scale_out.py``: a survivor skipped offsets 25-86 of a partition it took over, and three
requests in them were never scored.

So the worker checks each record's offset against the one it expects. Records before it are redeliveries (the
processor skips them); records after it mean a gap, which the worker reads again with a consumer of its own
(``streams/kafka/fetch.py``) and processes, in order, before the record that revealed it. Offsets the topic no
longer holds (retention, transaction markers) are counted as missing and passed over.

>>> skipped_offsets(expected=7, offset=7), skipped_offsets(expected=7, offset=5)   # in order; a redelivery
(range(0, 0), range(0, 0))
>>> skipped_offsets(expected=7, offset=10)
range(7, 10)
>>> skipped_offsets(expected=None, offset=10)                # nothing known about the partition
range(0, 0)
"""

from __future__ import annotations

__all__ = ["skipped_offsets"]


def skipped_offsets(expected: int | None, offset: int) -> range:
    """The offsets a consumer skipped if the record at ``offset`` came when ``expected`` was due."""
    if expected is None or offset <= expected:
        return range(0)
    return range(expected, offset)
