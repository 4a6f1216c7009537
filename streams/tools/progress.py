"""A one-line progress reporter for long commands (record, produce, replay).

On a terminal it redraws one line in place (count, percentage when the total is known, items/s), at most ~10
times a second so a fast loop does not spend its time printing. Anywhere else (a pipe, a log file, CI) it stays
quiet until the end, then prints one summary line, so logs are not filled with carriage returns.

>>> import io
>>> ticks = iter([10.0, 14.0])  # entering, leaving
>>> out = io.StringIO()
>>> with Progress("produce", total=10, stream=out, clock=lambda: next(ticks)) as p:
...     p.update(5)
...     p.update(10)
>>> out.getvalue()
'produce: 10 items in 4.0 s (2.5/s)\\n'
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]

REDRAW_EVERY = 0.1
"""Seconds between two redraws on a terminal."""


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _rate(count: int, seconds: float) -> str:
    if seconds <= 0:
        return "-"
    rate = count / seconds
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.1f}"


class Progress:
    """Report a count as it grows; use it as a context manager, feed it absolute counts with :meth:`update`.

    ``stream`` defaults to ``sys.stderr`` as it is when the reporter is made (so a redirected stderr is honoured).
    ``clock`` is for tests: seconds, monotonic.
    """

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.count = 0
        self._clock = clock
        self._tty = _is_tty(self.stream)
        self._started: float | None = None
        self._last_draw = -math.inf
        self._drawn_width = 0

    def __enter__(self) -> Progress:
        self._started = self._clock()
        return self

    def update(self, n: int) -> None:
        """The count is now ``n`` (not an increment)."""
        self.count = n
        if not self._tty:
            return
        now = self._clock()
        if now - self._last_draw >= REDRAW_EVERY:
            self._last_draw = now
            self._draw(self._line(self._elapsed(now)))

    def _elapsed(self, now: float) -> float:
        if self._started is None:  # used without `with`: time runs from the first update
            self._started = now
        return now - self._started

    def _line(self, elapsed: float) -> str:
        done = f"{self.count}"
        if self.total is not None:
            share = f" ({100 * self.count / self.total:.1f}%)" if self.total > 0 else ""
            done += f"/{self.total}{share}"
        return f"{self.label}: {done} items, {_rate(self.count, elapsed)}/s"

    def summary(self, elapsed: float) -> str:
        return f"{self.label}: {self.count} items in {elapsed:.1f} s ({_rate(self.count, elapsed)}/s)"

    def _draw(self, text: str, end: str = "") -> None:
        # pad over what the previous, possibly longer, line left on the terminal
        self.stream.write("\r" + text.ljust(self._drawn_width) + end)
        self.stream.flush()
        self._drawn_width = len(text)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        text = self.summary(self._elapsed(self._clock()))
        if self._tty:
            self._draw(text, end="\n")
        else:
            self.stream.write(text + "\n")
            self.stream.flush()
