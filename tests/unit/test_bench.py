"""The benchmark's pure parts: ratios, percentiles, the table, the mix and stream it describes. No timing."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

import bench.mix
import bench.report
import bench.state
from bench.plan import FULL, QUICK
from bench.report import figure, percentiles, ratio, render_table
from bench.state import disk_bytes, user_stream


@pytest.mark.parametrize("module", [bench.report, bench.mix, bench.state])
def test_doctests(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


def test_ratio_is_value_over_baseline_and_none_without_one() -> None:
    assert ratio(700.0, 5_300.0) == pytest.approx(0.1321)
    assert ratio(1.0, None) is None
    assert ratio(None, 1.0) is None


def test_figure_has_a_ratio_per_baseline_only_when_it_has_baselines() -> None:
    assert "ratio" not in figure(1.0, "s")
    fig = figure(2.0, "ms", {"bare": 1.0, "faust": 4.0})
    assert fig["ratio"] == {"bare": 2.0, "faust": 0.5}


def test_percentiles_are_nearest_rank() -> None:
    p = percentiles([float(i) for i in range(1, 101)])
    assert (p["p50"], p["p95"], p["p99"], p["max"], p["n"]) == (50.0, 95.0, 99.0, 100.0, 100)
    assert percentiles([])["p99"] is None


def test_table_lists_every_figure_error_and_skip_and_the_results_are_json() -> None:
    results = {"sections": {
        "live": {"figures": {"worker events/s": figure(700.0, "events/s", {"bare_aiokafka": 350_000.0})}},
        "state": {"figures": {}, "skipped": {"1000000": "too slow for the budget"}},
        "latency": {"error": "TimeoutError: no probe\nmore"},
    }}
    table = render_table(results)
    assert "worker events/s" in table and "0.002x bare_aiokafka" in table
    assert "skipped" in table and "TimeoutError: no probe" in table and "more" not in table
    json.dumps(results)


def test_user_stream_gives_every_user_a_view_and_every_third_a_request() -> None:
    events = user_stream(9)
    assert len({e["user_id"] for e in events}) == 9
    assert sum(e["type"] == "request" for e in events) == 3
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


def test_disk_bytes_groups_files_by_table(tmp_path: Path) -> None:
    for name, size in (("user-state-0.db/000001.sst", 10), ("user-state-1.db/LOG", 5), ("pending-0.db/x", 7)):
        path = tmp_path / "v1" / "tables" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    (tmp_path / "group-member.json").write_text("{}")
    sizes = disk_bytes(tmp_path)
    assert sizes["user-state"] == 15 and sizes["pending"] == 7 and sizes["other"] == 2 and sizes["total"] == 24


def test_plans_fit_their_purpose() -> None:
    assert QUICK.live_events < FULL.live_events and len(QUICK.latency_rates) <= len(FULL.latency_rates)
    assert json.dumps(FULL.describe()) and json.dumps(QUICK.describe())
