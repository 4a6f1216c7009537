"""Each partition's event-time clock, guarded so that one event with a bad ``ts`` cannot move it.

A partition's clock is the newest event time it has accepted; its watermark (clock less the allowed lateness)
closes attribution windows and the sweep forgets idle users, so an event far in the future would close every
waiting request and expire everyone at once. The rule (``docs/event-time.md`` says why this one):

1. an event that says it happened more than ``max_jump`` after the broker received it is refused at once: no
   producer sends an event before it happens (only when the record has a broker timestamp). Past this check,
   the first event of a partition starts its clock;
2. an event more than ``max_behind`` (the user TTL) behind the clock is refused: no state still covers it;
3. an event at most ``max_jump`` ahead of the clock is accepted; so is a bigger jump that the broker's own
   timestamps made too (a quiet partition resuming live), and an event within ``max_jump`` of its own broker
   timestamp (a fresh event on a partition whose clock lags because a late producer went first), unless the
   clock trails its broker time by more than ``max_behind`` (a backlog, where a wall-clock stamp is the outlier);
4. any other jump is *held*, with every event after it, until the next ``confirmations`` events confirm it
   (none of them more than ``max_jump`` behind it): then it is accepted and the rest are judged again after
   it. The first event more than ``max_jump`` behind it refutes it: it is refused, and the events held after
   it are judged again (the refuting one included).

Refused events come back with a reason, for the dead-letter topic. The decisions depend only on the sequence
of (ts, broker timestamp) of the partition, so a replay decides as the live worker did; held events keep
their order, so a confirmed jump gives the same outputs as an unguarded run, a little later.

>>> rule = ClockRule(max_jump=100.0, max_behind=1000.0, confirmations=2)
>>> clock = PartitionClock(rule)
>>> def offer(offset, ts):
...     return [(r.item.offset, r.reason is None) for r in clock.offer(Timed(ts, Source("t", 0, offset), b""))]
>>> offer(0, 10.0), offer(1, 20.0), offer(2, 30.0)   # the first event starts the clock
([(0, True)], [(1, True)], [(2, True)])
>>> offer(3, 1e9), offer(4, 40.0)                    # a lone outlier: held, then refuted by the next event
([], [(3, False), (4, True)])
>>> offer(5, 5000.0), offer(6, 5010.0), offer(7, 5020.0), clock.newest   # the stream moved on: confirmed
([], [], [(5, True), (6, True), (7, True)], 5020.0)
>>> offer(8, 10.0)[0][1]                             # too old for any state
False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.core.deadletter import Source
from streams.events import Event


def when(ts: float) -> str:
    """An event time for a reason: the number as sent, and its UTC date (from the number: no clock is read).

    >>> when(1700000000.5), when(1e10)
    ('1700000000.5 [2023-11-14T22:13:20Z]', '10000000000 [2286-11-20T17:46:40Z]')
    """
    number = f"{ts:.3f}".rstrip("0").rstrip(".")
    try:
        return f"{number} [{datetime.fromtimestamp(ts, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}]"
    except (OverflowError, OSError, ValueError):  # beyond the calendar datetime knows
        return number


@dataclass(frozen=True, slots=True)
class ClockRule:
    max_jump: float
    """Seconds an event may lead its partition's clock (or its own broker timestamp) without confirmation."""
    max_behind: float
    """Seconds an event may trail its partition's clock and still touch the state (the user TTL)."""
    confirmations: int
    """Later events that must follow a bigger jump before it moves the clock."""

    @classmethod
    def from_settings(cls, settings: Any) -> ClockRule:
        return cls(settings.clock_max_jump, settings.user_ttl, settings.clock_confirmations)


@dataclass(slots=True)
class Timed:
    """One decoded event as the clock sees it, and what it takes to process (or dead-letter) it later."""

    ts: float
    source: Source
    """Where it came from; ``source.timestamp`` is the broker's timestamp (None for a file)."""
    raw: bytes
    event: Event | None = None
    """The decoded event; None for an event held across a restart (it is decoded again from ``raw``)."""

    @property
    def offset(self) -> int:
        return self.source.offset

    @property
    def broker_ts(self) -> float | None:
        return self.source.timestamp


@dataclass(frozen=True, slots=True)
class Release:
    """An event the clock has decided on: accepted (``reason`` None) or refused, in the order to process."""

    item: Timed
    reason: str | None = None
    behind: float = 0.0
    """Seconds the accepted event trails the clock as it was just before it (0 when it moved the clock)."""


@dataclass
class PartitionClock:
    rule: ClockRule
    newest: float | None = None
    """Newest event time accepted: the partition's clock (None before its first event)."""
    broker_newest: float | None = None
    """Newest broker timestamp among the accepted events."""
    position: int | None = None
    """Offset of the last event offered (what :meth:`encode` saves as ``decided``)."""
    decided: int | None = None
    """Restored from a saved clock: events up to this offset were decided (and processed) before the save, so
    one offered again is a redelivery after a restart; see :meth:`is_redelivery`."""
    held: list[Timed] = field(default_factory=list)

    def offer(self, item: Timed) -> list[Release]:
        """Decide on one event (in offset order); returns what is decided now, in the order to process it:
        nothing while the event is held, several events when a hold ends."""
        self.position = item.offset
        if not self.held and self._refusal(item) is None and self._within(item):
            return [self._accept(item)]  # the common case, as _judge decides it, without its queue
        return self._judge([item])

    def passed(self, offset: int) -> None:
        """A record at ``offset`` was decided without the clock (undecodable, dead-lettered): a redelivery of
        it is skipped like any other."""
        self.position = offset

    def is_redelivery(self, offset: int) -> bool:
        """Whether the event at ``offset`` was decided before this clock was saved (so it must not be judged,
        nor vote on a held jump, again: its outputs and state went out before the save)."""
        return self.decided is not None and offset <= self.decided

    def flush(self) -> list[Release]:
        """End of input: held events were never confirmed; refuse the first, judge the others again."""
        out: list[Release] = []
        while self.held:
            first, rest = self.held[0], self.held[1:]
            self.held = []
            out.append(Release(first, self._jump_reason(first, "the input ended before it was confirmed")))
            out.extend(self._judge(rest))
        return out

    def _judge(self, items: list[Timed]) -> list[Release]:
        """The rules (the module's docstring) on ``items`` in order; a hold that ends sends the events it held
        through again, ahead of the rest, so the order of the partition is kept."""
        out: list[Release] = []
        queue = list(items)
        while queue:
            item = queue.pop(0)
            refused = self._refusal(item)
            if refused is not None:
                out.append(Release(item, refused))
            elif not self.held:
                if self._within(item):
                    out.append(self._accept(item))
                else:
                    self.held.append(item)
            elif item.ts < self.held[0].ts - self.rule.max_jump:
                first, queue = self.held[0], [*self.held[1:], item, *queue]
                self.held = []
                out.append(Release(first, self._jump_reason(
                    first, f"the next event (offset {item.offset}, ts {when(item.ts)}) did not follow it")))
            else:
                self.held.append(item)
                if len(self.held) > self.rule.confirmations:
                    first, queue = self.held[0], [*self.held[1:], *queue]
                    self.held = []
                    out.append(self._accept(first))
        return out

    def _refusal(self, item: Timed) -> str | None:
        """Why an event is refused whatever comes after it, or None."""
        rule = self.rule
        if item.broker_ts is not None and item.ts > item.broker_ts + rule.max_jump:
            return (f"ts {when(item.ts)} is {item.ts - item.broker_ts:.0f} s after the broker received the event "
                    f"({when(item.broker_ts)}): expected at most clock_max_jump ({rule.max_jump:g} s) after it, "
                    "an event is produced after it happens")
        if self.newest is not None and item.ts < self.newest - rule.max_behind:
            return (f"ts {when(item.ts)} is {self.newest - item.ts:.0f} s behind its partition's clock "
                    f"({when(self.newest)}): expected at most user_ttl ({rule.max_behind:.0f} s) behind, "
                    "no state keeps anything older")
        return None

    def _within(self, item: Timed) -> bool:
        """Whether an event may move the clock at once: a small step, or a jump the broker's clock made too."""
        if self.newest is None:
            return True  # the first event starts the clock: nothing to judge it by but rule 1 (see the doc)
        jump = item.ts - self.newest
        if jump <= self.rule.max_jump:
            return True
        if item.broker_ts is None:
            return False
        # The broker vouches for a time close to when it received the event: a fresh event on a partition whose
        # clock lags (a late producer went first) must not wait for, or be refuted by, the stragglers. Not on a
        # backlog, whose clock trails its broker time by more than any state keeps (``max_behind``): there a
        # wall-clock stamp is the outlier.
        lag = None if self.broker_newest is None else self.broker_newest - self.newest
        if item.ts >= item.broker_ts - self.rule.max_jump and (lag is None or lag <= self.rule.max_behind):
            return True
        return self.broker_newest is not None and jump <= item.broker_ts - self.broker_newest + self.rule.max_jump

    def _accept(self, item: Timed) -> Release:
        behind = 0.0 if self.newest is None or item.ts >= self.newest else self.newest - item.ts
        self.newest = item.ts if self.newest is None else max(self.newest, item.ts)
        if item.broker_ts is not None:
            self.broker_newest = item.broker_ts if self.broker_newest is None else max(self.broker_newest,
                                                                                       item.broker_ts)
        return Release(item, None, behind)

    def _jump_reason(self, item: Timed, why: str) -> str:
        rule = self.rule
        assert self.newest is not None  # only a clock that has started holds events
        return (f"ts {when(item.ts)} is {item.ts - self.newest:.0f} s ahead of its partition's clock "
                f"({when(self.newest)}), and {why}: expected a ts at most clock_max_jump ({rule.max_jump:g} s) "
                f"ahead, or a jump that the next clock_confirmations ({rule.confirmations}) events confirm")

    def encode(self) -> bytes:
        """The clock as bytes, to store with the partition's state (held events included: none is lost)."""
        return orjson.dumps({
            "newest": self.newest, "broker_newest": self.broker_newest, "decided": self.position,
            "held": [[h.ts, h.raw.decode("utf-8"), h.source.topic, h.source.partition, h.offset,
                      None if h.source.key is None else h.source.key.decode("utf-8"), h.broker_ts]
                     for h in self.held],
        })

    @classmethod
    def decode(cls, rule: ClockRule, blob: bytes | None) -> PartitionClock:
        """A clock from :meth:`encode`'s bytes (a fresh clock for ``None``).

        >>> rule = ClockRule(100.0, 1000.0, 2)
        >>> held = Timed(500.0, Source("events", 2, 4, b"u", 9.5), b'{"a":1}')
        >>> back = PartitionClock.decode(rule, PartitionClock(rule, newest=5.0, position=4, held=[held]).encode())
        >>> back.newest, back.is_redelivery(4), back.is_redelivery(5), back.held == [held]
        (5.0, True, False, True)
        """
        if blob is None:
            return cls(rule)
        data = orjson.loads(blob)
        held = [Timed(ts, Source(topic, partition, offset, None if key is None else key.encode("utf-8"), broker_ts),
                      raw.encode("utf-8"))
                for ts, raw, topic, partition, offset, key, broker_ts in data["held"]]
        return cls(rule, data["newest"], data["broker_newest"], data["decided"], data["decided"], held)
