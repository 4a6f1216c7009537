"""``streamscore config show``: the effective value of every setting and where it came from, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import main


def _shown(text: str) -> dict[str, tuple[str, str]]:
    """name -> (value, source) of the rows with a value (an empty one, like topic_prefix, is left out)."""
    rows = [line.split(maxsplit=2) for line in text.splitlines()]
    return {row[0]: (row[1], row[2]) for row in rows if len(row) == 3}


def test_config_show_reports_each_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "streamscore.toml"
    config.write_text('partitions = 3\nlabel = "conversion"\napp_id = "from-file"\n')
    monkeypatch.setenv("STREAMSCORE_APP_ID", "from-env")
    monkeypatch.setenv("STREAMSCORE_PARTITIONS", "5")
    assert main(["--config", str(config), "--set", "partitions=7", "--log-level", "warning", "config", "show"]) == 0
    shown = _shown(capsys.readouterr().out)
    assert shown["label"] == ("conversion", f"file {config}")
    assert shown["app_id"] == ("from-env", "environment")
    assert shown["partitions"] == ("7", "flag --set")
    assert shown["log_level"] == ("warning", "command line")
    assert shown["web_port"] == ("6066", "default")


def test_an_invalid_flag_fails_at_start_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("STREAMSCORE_WEB_PORT", raising=False)
    assert main(["--set", "web_port=70000", "config", "show"]) == 2
    err = capsys.readouterr().err
    assert err == ("streamscore: STREAMSCORE_WEB_PORT='70000' is not valid: expected a port 1..65535 "
                   "(from flag --set)\n")
