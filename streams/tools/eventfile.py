"""Event files: one JSON event per line, plain or gzip-compressed (by the ``.gz`` suffix).

This is the replay driver's input format and what the importers and the simulator are saved as.
:func:`write_events` is deterministic: the same events give a byte-identical file, compressed or not
(the gzip header carries ``mtime=0`` and no file name).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_events(d / "ev.jsonl.gz", [{"event_id": "e1", "ts": 1.5}, b'{"event_id":"e2"}'])
2
>>> list(read_events(d / "ev.jsonl.gz"))
[b'{"event_id":"e1","ts":1.5}', b'{"event_id":"e2"}']
>>> write_events(d / "a.jsonl.gz", [{"x": 1}]); write_events(d / "b.jsonl.gz", [{"x": 1}])
1
1
>>> (d / "a.jsonl.gz").read_bytes() == (d / "b.jsonl.gz").read_bytes()
True
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

PathLike = str | os.PathLike[str]

_GZIP_LEVEL = 6


def _is_gzip(path: PathLike) -> bool:
    return os.fspath(path).endswith(".gz")


def read_events(path: PathLike) -> Iterator[bytes]:
    """Yield each non-blank line of an event file as raw bytes, without its line ending.

    The bytes are not decoded: pass them to :func:`streams.events.decode_event`, exactly as a
    message value read from the ``events`` topic would be. The file is closed when the iterator
    is exhausted (or garbage-collected).
    """
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as f:
        for line in f:
            stripped = line.rstrip(b"\r\n")
            if stripped.strip():
                yield stripped


def _line(event: dict[str, Any] | bytes, index: int) -> bytes:
    if isinstance(event, bytes | bytearray | memoryview):
        raw = bytes(event)
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if b"\n" in raw or b"\r" in raw:
            raise ValueError(f"event #{index} has a line break inside its bytes; one event must be one line")
        if not raw.strip():
            raise ValueError(f"event #{index} is blank; read_events would skip it")
        return raw + b"\n"
    if isinstance(event, dict):
        return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
    raise TypeError(f"event #{index} must be a dict or bytes, got {type(event).__name__}")


def write_events(path: PathLike, events: Iterable[dict[str, Any] | bytes]) -> int:
    """Write events one per line (dicts with orjson, bytes as they are) and return how many.

    The file is written beside its final name and renamed into place at the end, so a reader never
    sees half a file. ``.gz`` paths are gzip-compressed with a header that carries neither the time
    nor the file name.
    """
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    count = 0
    try:
        with open(tmp, "wb") as raw:
            out: io.BufferedIOBase = (
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=_GZIP_LEVEL, mtime=0)
                if _is_gzip(target)
                else raw
            )
            try:
                for count, event in enumerate(events, start=1):
                    out.write(_line(event, count))
            finally:
                if out is not raw:
                    out.close()
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
