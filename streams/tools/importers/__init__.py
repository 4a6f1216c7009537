"""Importers: public log files turned into events of DESIGN.md's schema, in event-time order.

Each importer is an :class:`Importer`: an iterator of event dicts (ready for ``orjson.dumps`` and
:func:`streams.events.decode_event`) that also keeps account of what it could not convert.
Nothing is dropped silently: a row that cannot become an event is counted in :attr:`Importer.skipped`
under a reason, with the first line it happened on in :attr:`Importer.first_line`; a row converted
with a caveat (say, a click on an item that was not shown) is counted in :attr:`Importer.notes`.

- :func:`streams.tools.importers.trivago.read_trivago` — trivago RecSys Challenge 2019 sessions.
- :func:`streams.tools.importers.talkingdata.read_talkingdata` — TalkingData ad clicks and installs.

>>> class Demo(Importer):
...     source = "demo"
...     def _events(self):
...         yield {"event_id": "e1"}
...         self._skip("no user", line=3)
...         self._note("odd but kept", line=4)
>>> reader = Demo("unused.csv")
>>> list(reader), dict(reader.skipped), reader.first_line, dict(reader.notes)
([{'event_id': 'e1'}], {'no user': 1}, {'no user': 3, 'odd but kept': 4}, {'odd but kept': 1})
>>> reader.report()
'demo unused.csv: 1 events, 1 rows skipped (no user: 1 from line 3); notes: odd but kept: 1 from line 4'
"""

from __future__ import annotations

import csv
import gzip
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike[str]
Event = dict[str, Any]


class Importer(Iterator[Event]):
    """An iterator of events read from one file, with counts of what was skipped and why.

    Subclasses implement :meth:`_events` (a generator) and call :meth:`_skip` / :meth:`_note`.
    The counts are complete once the iterator is exhausted.
    """

    source = "importer"

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.events = 0
        """Events yielded so far."""
        self.skipped: Counter[str] = Counter()
        """Rows that could not be converted, by reason."""
        self.notes: Counter[str] = Counter()
        """Rows converted with a caveat, by reason."""
        self.first_line: dict[str, int] = {}
        """For every reason (skip or note), the first file line it applied to (1 = the header)."""
        self._it: Iterator[Event] | None = None

    def _events(self) -> Iterator[Event]:
        raise NotImplementedError

    def __iter__(self) -> Importer:
        return self

    def __next__(self) -> Event:
        if self._it is None:
            self._it = self._events()
        event = next(self._it)
        self.events += 1
        return event

    def _skip(self, reason: str, line: int) -> None:
        self.skipped[reason] += 1
        self.first_line.setdefault(reason, line)

    def _note(self, reason: str, line: int) -> None:
        self.notes[reason] += 1
        self.first_line.setdefault(reason, line)

    def report(self) -> str:
        """One line saying what was read, skipped and noted (for logs and CLI output)."""

        def part(counts: Counter[str]) -> str:
            return ", ".join(f"{r}: {n} from line {self.first_line[r]}" for r, n in sorted(counts.items()))

        text = f"{self.source} {self.path}: {self.events} events, {sum(self.skipped.values())} rows skipped"
        if self.skipped:
            text += f" ({part(self.skipped)})"
        if self.notes:
            text += f"; notes: {part(self.notes)}"
        return text


def csv_rows(path: PathLike, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str] | None]]:
    """Yield ``(line, values)`` for every data row of a CSV file (gzip when the name ends in ``.gz``).

    ``values`` are the row's fields for ``columns``, in that order, or ``None`` when the row does not
    have as many fields as the header (the caller skips it with a reason). ``line`` is the file line
    the row ends on (the header is line 1). Raises :class:`ValueError` if a column is missing.
    """
    opener: Any = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected a CSV header with {', '.join(columns)}")
        index = {name.strip(): i for i, name in enumerate(header)}
        missing = [name for name in columns if name not in index]
        if missing:
            raise ValueError(f"{path}: the CSV header lacks {', '.join(missing)}; it has {', '.join(header)}")
        picks = [index[name] for name in columns]
        width = len(header)
        for row in reader:
            if not row:
                continue
            yield reader.line_num, ([row[i] for i in picks] if len(row) == width else None)
