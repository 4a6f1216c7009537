"""Non-regression: the golden input must replay to the checked-in outputs, byte for byte.

On a difference, the failure names the records that changed and the fields that differ. If the change is
intended, run ``make golden`` and commit the regenerated files: the diff is the review.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.core.records import OUTPUT_FILES
from streams.replay.cli import run_replay
from tests.fixtures import early_candidates
from tests.golden import EXPECTED, INPUT, SETTINGS


def _label(record: Any) -> str:
    if isinstance(record, dict):
        keys = [str(record[k]) for k in ("request_id", "item_id", "offset") if k in record]
        return "/".join(keys) or "record"
    return "record"


def _fields(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Paths of the fields where two decoded records differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in sorted(set(a) | set(b)) for p in _fields(a.get(k), b.get(k), f"{prefix}{k}.")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in _fields(x, y, f"{prefix}{i}.")]
    return [] if a == b else [prefix.rstrip(".") or "(whole record)"]


def describe_changes(expected: bytes, actual: bytes, limit: int = 8) -> str:
    """Which records of a JSON-lines output changed, and in which fields."""
    old, new = expected.splitlines(), actual.splitlines()
    lines = [f"{len(old)} records expected, {len(new)} produced"] if len(old) != len(new) else []
    changed = [i for i in range(min(len(old), len(new))) if old[i] != new[i]]
    for i in changed[:limit]:
        before, after = orjson.loads(old[i]), orjson.loads(new[i])
        lines.append(f"  line {i + 1} ({_label(before)}): {', '.join(_fields(before, after)[:6])}")
    if len(changed) > limit:
        lines.append(f"  ... and {len(changed) - limit} more changed lines")
    return "\n".join(lines)


def test_describe_changes_names_the_record_and_the_fields() -> None:
    old = b'{"request_id":"r1","x":{"a":1.0,"b":2.0}}\n{"request_id":"r2","x":{}}\n'
    new = b'{"request_id":"r1","x":{"a":1.5,"b":2.0}}\n{"request_id":"r2","x":{}}\n'
    assert describe_changes(old, new) == "  line 1 (r1): x.a"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("golden")
    run_replay(SETTINGS, INPUT, out)
    return out


@pytest.mark.parametrize("name", [*OUTPUT_FILES.values(), "metrics.json"])
def test_the_golden_input_replays_to_the_checked_in_outputs(replayed: Path, name: str) -> None:
    expected, actual = (EXPECTED / name).read_bytes(), (replayed / name).read_bytes()
    if expected != actual:
        detail = describe_changes(expected, actual) if name.endswith(".jsonl") else actual.decode()
        pytest.fail(f"{name} changed:\n{detail}\nIf intended: `make golden`, then review and commit the diff.")


def test_the_golden_input_covers_the_cases_it_is_for(replayed: Path) -> None:
    dead = [orjson.loads(line)["code"] for line in (replayed / "dead_letter.jsonl").read_bytes().splitlines()]
    assert sorted(dead) == ["invalid", "label_unknown_request", "not_json"]
    records = [orjson.loads(line) for line in (replayed / "examples.jsonl").read_bytes().splitlines()]
    examples = [e for e in records if "kind" not in e]  # window-closed; the rest are fnw's early records
    assert {(e["item_id"], e["y"]) for e in examples if e["request_id"] == "g-r1"} == {("i1", 0), ("i2", 1)}
    assert sum(e["y"] for e in examples) > 10
    # Clicks, so fnw (the default's choice): a fake negative per candidate, a positive for the clicked one.
    early = {(e["kind"], e["item_id"]) for e in early_candidates(records) if e["request_id"] == "g-r1"}
    assert early == {("fake_negative", "i1"), ("fake_negative", "i2"), ("positive", "i2")}
    assert all(e.get("learned") == "fnw" for e in examples if e["request_id"] == "g-r1")
