"""The ``streamscore replay`` contract: inputs, output files, metrics.json, determinism, options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.cli import main
from streams.tools.eventfile import write_events
from streams.tools.simulate import simulate

OUTPUTS = ["dead_letter.jsonl", "examples.jsonl", "feature_log.jsonl", "metrics.json", "scores.jsonl"]


def _lines(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _examples(out_dir: Path) -> list[Any]:
    """The window-closed examples of a replay: the early records of fnw (on clicks by default) set aside."""
    return [e for e in _lines(out_dir / "examples.jsonl") if "kind" not in e]


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    events, _ = simulate(users=10, events=300, seed=3)
    path = tmp_path_factory.mktemp("in") / "events.jsonl.gz"
    write_events(path, [*events[:150], b"{broken", *events[150:]])
    return path


def test_replay_writes_the_contracted_files_and_metrics(events_file: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(events_file), "--out", str(tmp_path / "a")]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == OUTPUTS
    metrics = orjson.loads((tmp_path / "a" / "metrics.json").read_bytes())
    assert {"models", "events", "requests", "dead_letter"} <= set(metrics)
    assert set(metrics["models"]) == {"prod", "baseline"}
    assert all(set(m) == {"n", "logloss", "auc", "calibration"} for m in metrics["models"].values())
    scores = _lines(tmp_path / "a" / "scores.jsonl")
    assert (metrics["events"], metrics["requests"], metrics["dead_letter"]) == (301, len(scores), 1)
    examples = _examples(tmp_path / "a")
    assert metrics["models"]["prod"]["n"] == len(examples) == sum(len(s["scores"]) for s in scores)
    assert _lines(tmp_path / "a" / "dead_letter.jsonl")[0]["code"] == "not_json"
    assert "301 events" in capsys.readouterr().out


def test_replaying_twice_gives_identical_files(events_file: Path, tmp_path: Path) -> None:
    for out in ("a", "b"):
        assert main(["replay", str(events_file), "--out", str(tmp_path / out)]) == 0
    for name in OUTPUTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_a_shorter_attribution_window_from_a_config_file_or_a_flag(tmp_path: Path) -> None:
    request = {"event_id": "e1", "user_id": "u", "ts": 100.0, "type": "request", "request_id": "r",
               "candidates": ["a", "b"]}
    click = {"event_id": "e2", "user_id": "u", "ts": 400.0, "type": "click", "request_id": "r", "item_id": "a"}
    path = tmp_path / "in.jsonl"
    write_events(path, [request, click])
    config = tmp_path / "settings.toml"
    config.write_text("click_window = 200.0\n")
    runs = {"default": [], "config": ["--config", str(config)], "flag": ["--attribution-window", "200"]}
    for name, extra in runs.items():
        assert main(["replay", str(path), "--out", str(tmp_path / name), *extra]) == 0
    positives = {name: sum(e["y"] for e in _examples(tmp_path / name)) for name in runs}
    assert positives == {"default": 1, "config": 0, "flag": 0}  # a click 300 s later is late for a 200 s window


TRIVAGO = ("user_id,session_id,timestamp,step,action_type,reference,platform,city,device,current_filters,"
           "impressions,prices\n"
           "U1,s1,100,1,interaction item image,7,DE,Bonn,mobile,,,\n"
           "U1,s1,105,2,clickout item,7,DE,Bonn,mobile,,5|7|9,80|95|60\n")

TALKINGDATA = ("ip,app,device,os,channel,click_time,attributed_time,is_attributed\n"
               "8,19,0,29,213,2017-11-07 09:30:38,2017-11-07 09:31:00,1\n"
               "9,12,1,13,497,2017-11-07 09:30:40,,0\n")


def test_the_real_log_formats(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(TRIVAGO)
    assert main(["replay", str(tmp_path / "t.csv"), "--format", "trivago", "--out", str(tmp_path / "t")]) == 0
    examples = _examples(tmp_path / "t")
    assert sorted((e["item_id"], e["y"]) for e in examples) == [("5", 0), ("7", 1), ("9", 0)]
    assert [e["x"]["item_seen"] for e in examples if e["item_id"] == "7"] == [1.0]  # the image view before

    (tmp_path / "d.csv").write_text(TALKINGDATA)
    args = ["replay", str(tmp_path / "d.csv"), "--format", "talkingdata", "--label", "conversion",
            "--out", str(tmp_path / "d")]
    assert main(args) == 0
    assert sorted((e["user_id"], e["y"]) for e in _examples(tmp_path / "d")) == [("8", 1), ("9", 0)]


def test_a_csv_without_its_format_is_refused_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.csv").write_text(TRIVAGO)
    assert main(["replay", str(tmp_path / "t.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "--format" in capsys.readouterr().err


def test_simulate_writes_the_stream_and_its_truth_and_replays(tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl.gz"
    args = ["simulate", "--users", "20", "--events", "400", "--seed", "5", "--out"]
    assert main([*args, str(out)]) == 0
    truth = orjson.loads((tmp_path / "sim.truth.json").read_bytes())
    assert 0.5 < truth["oracle"]["auc"] < 1.0 and truth["oracle"]["n"] > 0
    assert main([*args, str(tmp_path / "again.jsonl.gz")]) == 0
    assert out.read_bytes() == (tmp_path / "again.jsonl.gz").read_bytes()
    assert main(["replay", str(out), "--out", str(tmp_path / "r")]) == 0
    assert orjson.loads((tmp_path / "r" / "metrics.json").read_bytes())["events"] == 400
