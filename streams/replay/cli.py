"""``streamscore replay``: a file of events through the worker's and the learner's code, with no broker.

The command-line contract (other tools depend on it)::

    streamscore replay INPUT --out DIR [--format jsonl|trivago|talkingdata] [--label click|conversion]
                       [--attribution-window SECONDS] [--config FILE]

DIR receives ``scores.jsonl``, ``feature_log.jsonl``, ``examples.jsonl``, ``dead_letter.jsonl`` (the record
shapes of the topics) and ``metrics.json``: ``{"models": {name: {"n", "logloss", "auc", "calibration"}},
"events", "requests", "dead_letter"}`` (plus ``examples`` and the learner's ``tripwire``). At the end of the
input, waiting requests close as under a final watermark, so a run is complete, and the same input gives
the same files, byte for byte.

A JSON-lines INPUT may be a recording of the events topic (``streamscore record``): its records are replayed
with their keys, broker timestamps, partitions and offsets, so that each partition's event clock decides as the
worker's did (``docs/event-time.md``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from streams.core.labels import with_label
from streams.core.records import DEAD_LETTER, OUTPUT_FILES, Output
from streams.replay.driver import ReplayDriver
from streams.settings import Settings
from streams.tools.eventfile import read_events
from streams.tools.record import Recorded, is_recording, read_recording

FORMATS = ("jsonl", "trivago", "talkingdata")


def recorded_events(path: Path) -> Iterator[Recorded] | None:
    """The records of ``path`` when it is a recording (``streamscore record``), else None."""
    first = next(read_events(path), None)  # the generator is dropped at once, which closes the file
    return read_recording(path) if first is not None and is_recording(first) else None


def input_events(path: Path, fmt: str) -> Iterator[bytes]:
    """The raw events of ``path``: JSON lines as they are (bad ones included: they go to the dead letters),
    or the events an importer makes of a known CSV log."""
    if fmt == "jsonl":
        yield from read_events(path)
    elif fmt == "trivago":
        from streams.tools.importers.trivago import read_trivago

        yield from (orjson.dumps(e) for e in read_trivago(path))
    elif fmt == "talkingdata":
        from streams.tools.importers.talkingdata import read_talkingdata

        yield from (orjson.dumps(e) for e in read_talkingdata(path))
    else:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def guess_format(path: Path) -> str:
    return "jsonl" if ".csv" not in path.suffixes else ""


def replay_settings(settings: Settings, label: str | None, window: float | None) -> Settings:
    return with_label(settings, label, window)


def metrics_summary(driver: ReplayDriver, events: int) -> dict[str, Any]:
    report = driver.report()
    return {
        "models": {name: {k: m["cumulative"][k] for k in ("n", "logloss", "auc", "calibration")}
                   for name, m in report["models"].items()},
        "events": events,
        "requests": driver.processor.counters.get("requests_scored"),
        "dead_letter": driver.counts[DEAD_LETTER],
        # Window-closed examples; the early records of learn_from=fnw share their topic but are not examples.
        "examples": sum(driver.processor.counters.get(f"examples_{y}") for y in ("positive", "negative")),
        "tripwire": report["tripwire"],
    }


def run_replay(settings: Settings, input_path: Path, out_dir: Path, fmt: str = "jsonl",
               progress: Any = None) -> dict[str, Any]:
    """Replay ``input_path`` into ``out_dir``; returns the metrics written to ``metrics.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        handles: dict[str, IO[bytes]] = {topic: files.enter_context((out_dir / name).open("wb"))
                                         for topic, name in OUTPUT_FILES.items()}

        def write(out: Output) -> None:
            handle = handles.get(out.topic)
            if handle is not None:
                handle.write(out.value + b"\n")

        driver = ReplayDriver(settings, source=input_path.name, learn=True, sink=write)
        events = 0
        recording = recorded_events(input_path) if fmt == "jsonl" else None
        if recording is not None:
            # As the worker read them: key, broker timestamp, partition and offset (a tombstone is b"", as live).
            records: Iterator[tuple[bytes, dict[str, Any]]] = (
                (r.value or b"", {"key": r.key, "timestamp": r.timestamp / 1000 if r.timestamp > 0 else None,
                                  "partition": r.partition, "offset": r.offset}) for r in recording)
        else:
            records = ((raw, {}) for raw in input_events(input_path, fmt))
        for raw, where in records:
            driver.pipe(raw, **where)
            events += 1
            if progress is not None and events % 500 == 0:
                progress.update(events)
        driver.finish()
        if progress is not None:
            progress.update(events)
    metrics = metrics_summary(driver, events)
    (out_dir / "metrics.json").write_bytes(orjson.dumps(metrics, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
                                           + b"\n")
    return metrics
