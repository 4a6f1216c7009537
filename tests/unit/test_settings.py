"""Settings: defaults, one STREAMSCORE_* variable per field, refusals that name the variable and the range."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.settings import (
    TOPIC_NAMES,
    Settings,
    SettingsError,
    flag_assignments,
    load_settings,
    resolve_settings,
    show_settings,
    to_env,
)


def test_defaults() -> None:
    s = load_settings({})
    assert s == Settings()
    assert (s.bootstrap, s.app_id, s.partitions, s.replication) == ("127.0.0.1:9092", "streamscore", 4, 1)
    assert (s.topic_prefix, dict(s.topic_overrides), s.data_dir) == ("", {}, Path(".data"))
    assert (s.web_host, s.web_port, s.web_enabled) == ("127.0.0.1", 6066, True)
    assert (s.batch_size, s.checkpoint_every, s.session_timeout) == (1000, 0.25, 10.0)
    assert (s.max_candidates, s.model_seed, s.log_level) == (500, 42, "info")
    assert (s.state_dir, s.broker_dir) == (Path(".data/state"), Path(".data/broker"))


def test_other_environment_variables_are_ignored() -> None:
    assert load_settings({"PARTITIONS": "9", "streamscore_partitions": "9", "HOME": "/x"}) == Settings()


# One row per field (topic_overrides has its own tests): variable, raw value, expected value of its type.
OVERRIDES: list[tuple[str, str, Any]] = [
    ("bootstrap", "kafka:9092,kafka2:9092", "kafka:9092,kafka2:9092"),
    ("app_id", "scorer-a", "scorer-a"),
    ("partitions", "8", 8),
    ("replication", "3", 3),
    ("topic_prefix", "t1.", "t1."),
    ("data_dir", "/var/lib/streamscore", Path("/var/lib/streamscore")),
    ("web_host", "0.0.0.0", "0.0.0.0"),
    ("web_port", "8080", 8080),
    ("web_enabled", "false", False),
    ("batch_size", "64", 64),
    ("checkpoint_every", "1.5", 1.5),
    ("session_timeout", "30", 30.0),
    ("stall_after", "5", 5.0),
    ("release_dead_member", "false", False),
    ("max_candidates", "20", 20),
    ("user_ttl", "200000", 200000.0),  # must exceed the longest attribution window plus lateness
    ("expiry_sweep_every", "600", 600.0),
    ("allowed_lateness", "5.5", 5.5),
    ("clock_max_jump", "120", 120.0),  # must be at least the allowed lateness
    ("clock_confirmations", "5", 5),
    ("label", "conversion", "conversion"),
    ("click_window", "1800", 1800.0),
    ("conversion_window", "7200", 7200.0),
    ("max_pending", "8", 8),
    ("models", "prod", "prod"),
    ("arms", "A:prod:0.5,B:baseline:0.5", "A:prod:0.5,B:baseline:0.5"),
    ("experiment_salt", "exp-2", "exp-2"),
    ("snapshot_every", "100", 100),
    ("snapshot_seconds", "5", 5.0),
    ("snapshot_key", "s3cret", "s3cret"),
    ("metrics_window", "500", 500),
    ("tripwire_margin", "0.01", 0.01),
    ("tripwire_min_count", "50", 50),
    ("learner_web_port", "7000", 7000),
    ("learner_max_seen", "5000", 5000),
    ("negative_sample_rate", "0.25", 0.25),
    ("learn_from", "fnw", "fnw"),
    ("item_features", "false", False),
    ("item_lag", "30", 30.0),
    ("item_half_life", "3600", 3600.0),
    ("item_max_keys", "1000", 1000),
    ("item_prior_weight", "5", 5.0),
    ("item_vectors", "true", True),
    ("item_vectors_every", "600", 600.0),
    ("item_vectors_dim", "8", 8),
    ("item_vectors_items", "500", 500),
    ("item_vectors_window", "3", 3),
    ("baseline", "position_ctr", "position_ctr"),
    ("model_seed", "7", 7),
    ("log_level", "debug", "debug"),
]


def test_every_field_has_an_override_row() -> None:
    names = {f.name for f in dataclasses.fields(Settings)} - {"topic_overrides"}
    assert names == {name for name, _, _ in OVERRIDES}


@pytest.mark.parametrize(("name", "raw", "expected"), OVERRIDES, ids=[row[0] for row in OVERRIDES])
def test_each_variable_overrides_its_field_with_its_type(name: str, raw: str, expected: Any) -> None:
    s = load_settings({f"STREAMSCORE_{name.upper()}": raw})
    value = getattr(s, name)
    assert value == expected
    assert type(value) is type(expected)
    assert type(value) is type(getattr(Settings(), name))
    # Every other field keeps its default.
    assert dataclasses.replace(s, **{name: getattr(Settings(), name)}) == Settings()


def test_os_environ_is_the_default_source_and_keywords_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMSCORE_PARTITIONS", "6")
    monkeypatch.setenv("STREAMSCORE_APP_ID", "from-env")
    assert load_settings().partitions == 6
    s = load_settings(app_id="from-kwarg")
    assert (s.partitions, s.app_id) == (6, "from-kwarg")
    assert load_settings({}).partitions == 4  # an explicit mapping replaces os.environ


@pytest.mark.parametrize(("raw", "expected"), [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True), (" On ", True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("off", False),
])
def test_bool_spellings(raw: str, expected: bool) -> None:
    assert load_settings({"STREAMSCORE_WEB_ENABLED": raw}).web_enabled is expected


def test_whole_numbers_accept_surrounding_spaces() -> None:
    assert load_settings({"STREAMSCORE_PARTITIONS": " 12 "}).partitions == 12


@pytest.mark.parametrize("name", ["PARTITIONS", "REPLICATION", "BATCH_SIZE", "MAX_CANDIDATES", "MODEL_SEED"])
@pytest.mark.parametrize("raw", ["zero", "0", "-1", "1.5", "", "1e3"])
def test_invalid_whole_numbers(name: str, raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({f"STREAMSCORE_{name}": raw})
    assert str(info.value) == f"STREAMSCORE_{name}={raw!r} is not valid: expected a whole number >= 1"


@pytest.mark.parametrize("raw", ["http", "0", "-5", "65536", "70000", "80.5"])
def test_invalid_web_port(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"STREAMSCORE_WEB_PORT": raw})
    assert str(info.value) == f"STREAMSCORE_WEB_PORT={raw!r} is not valid: expected a port 1..65535"


def test_web_port_bounds() -> None:
    assert load_settings({"STREAMSCORE_WEB_PORT": "1"}).web_port == 1
    assert load_settings({"STREAMSCORE_WEB_PORT": "65535"}).web_port == 65535


@pytest.mark.parametrize("name", ["SESSION_TIMEOUT", "USER_TTL"])
@pytest.mark.parametrize("raw", ["fast", "0", "-1", "nan", "inf", "-inf", ""])
def test_invalid_positive_numbers(name: str, raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({f"STREAMSCORE_{name}": raw})
    assert str(info.value) == f"STREAMSCORE_{name}={raw!r} is not valid: expected a finite number > 0"


@pytest.mark.parametrize("raw", ["maybe", "", "2", "t"])
def test_invalid_bools(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"STREAMSCORE_WEB_ENABLED": raw})
    assert str(info.value) == f"STREAMSCORE_WEB_ENABLED={raw!r} is not valid: expected true or false"


@pytest.mark.parametrize("raw", ["5.9", "1", "0.5"])
def test_session_timeout_under_six_seconds(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"STREAMSCORE_SESSION_TIMEOUT": raw})
    assert str(info.value) == (
        f"STREAMSCORE_SESSION_TIMEOUT={float(raw)} is not valid: "
        "expected at least 6 seconds (noida-db rejects shorter session timeouts)")
    with pytest.raises(SettingsError, match="at least 6 seconds"):
        load_settings({}, session_timeout=float(raw))
    assert load_settings({"STREAMSCORE_SESSION_TIMEOUT": "6"}).session_timeout == 6.0


def test_topic_names_follow_the_prefix() -> None:
    s = load_settings({"STREAMSCORE_TOPIC_PREFIX": "t1."})
    assert [s.topic(t) for t in TOPIC_NAMES] == [
        "t1.events", "t1.scores", "t1.feature-log", "t1.examples", "t1.model-snapshots", "t1.metrics",
        "t1.dead-letter", "t1.item-deltas"]
    assert [Settings().topic(t) for t in TOPIC_NAMES] == list(TOPIC_NAMES)


def test_per_topic_overrides_replace_the_prefixed_name() -> None:
    s = load_settings({"STREAMSCORE_TOPIC_PREFIX": "t1.", "STREAMSCORE_TOPIC_DEAD_LETTER": "dlq",
                       "STREAMSCORE_TOPIC_FEATURE_LOG": "ml.features", "STREAMSCORE_TOPIC_EVENTS": "in"})
    assert dict(s.topic_overrides) == {"events": "in", "feature-log": "ml.features", "dead-letter": "dlq"}
    assert s.topic("dead-letter") == "dlq"
    assert s.topic("feature-log") == "ml.features"
    assert s.topic("events") == "in"
    assert s.topic("scores") == "t1.scores"
    assert s.topic("model-snapshots") == "t1.model-snapshots"


def test_unknown_logical_topic() -> None:
    with pytest.raises(KeyError, match="unknown topic 'deadletter'; known: events, scores, "):
        Settings().topic("deadletter")


def test_to_env_names_every_variable() -> None:
    env = to_env(Settings())
    assert set(env) == {f"STREAMSCORE_{f.name.upper()}" for f in dataclasses.fields(Settings)} - {
        "STREAMSCORE_TOPIC_OVERRIDES"}
    assert env["STREAMSCORE_WEB_ENABLED"] == "true"
    assert env["STREAMSCORE_DATA_DIR"] == ".data"
    assert env["STREAMSCORE_SESSION_TIMEOUT"] == "10.0"
    overrides = to_env(Settings(topic_overrides={"dead-letter": "dlq", "model-snapshots": "snaps"}))
    assert overrides["STREAMSCORE_TOPIC_DEAD_LETTER"] == "dlq"
    assert overrides["STREAMSCORE_TOPIC_MODEL_SNAPSHOTS"] == "snaps"


def test_to_env_round_trips_defaults_and_a_fully_changed_settings() -> None:
    assert load_settings(to_env(Settings())) == Settings()
    changed = dataclasses.replace(
        Settings(**{name: expected for name, _, expected in OVERRIDES}),
        topic_overrides={t: f"real-{t}" for t in TOPIC_NAMES}, data_dir=Path("/tmp/x y/ü"),
        allowed_lateness=0.1 + 0.2, session_timeout=6.000001, model_seed=123456789,
    )
    assert all(getattr(changed, f.name) != getattr(Settings(), f.name) for f in dataclasses.fields(Settings))
    assert load_settings(to_env(changed)) == changed


_TEXT = st.text(max_size=12)  # no surrogates: real environment values are valid text
_POSITIVE = st.integers(1, 10**9)
VALID_SETTINGS = st.builds(
    Settings,
    bootstrap=_TEXT, app_id=_TEXT, partitions=_POSITIVE, replication=_POSITIVE, topic_prefix=_TEXT,
    topic_overrides=st.dictionaries(st.sampled_from(TOPIC_NAMES), _TEXT),
    data_dir=_TEXT.map(Path), web_host=_TEXT, web_port=st.integers(1, 65535), web_enabled=st.booleans(),
    batch_size=_POSITIVE,
    session_timeout=st.floats(min_value=6, max_value=1e9), max_candidates=_POSITIVE,
    user_ttl=st.floats(min_value=1e5, max_value=1e12), model_seed=_POSITIVE,
    log_level=_TEXT,
)


@settings(max_examples=200, deadline=None)
@given(VALID_SETTINGS)
def test_to_env_round_trips_any_valid_settings(s: Settings) -> None:
    env = to_env(s)
    assert all(k.startswith("STREAMSCORE_") and isinstance(v, str) for k, v in env.items())
    assert load_settings(env) == s


def test_a_user_ttl_shorter_than_an_attribution_window_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"STREAMSCORE_USER_TTL=7000.0 .* longest attribution window"):
        load_settings({"STREAMSCORE_USER_TTL": "7000", "STREAMSCORE_CONVERSION_WINDOW": "7200"})
    assert load_settings({"STREAMSCORE_USER_TTL": "7300", "STREAMSCORE_CONVERSION_WINDOW": "7200"}).user_ttl == 7300


def test_precedence_is_default_then_file_then_environment_then_flag_then_command_line(tmp_path: Path) -> None:
    config = tmp_path / "streamscore.toml"
    config.write_text('partitions = 3\napp_id = "from-file"\nlabel = "conversion"\nbatch_size = 10\n')
    env = {"STREAMSCORE_PARTITIONS": "5", "STREAMSCORE_APP_ID": "from-env", "STREAMSCORE_BATCH_SIZE": "20"}
    flags = flag_assignments(["partitions=7", "batch_size=30"])
    settings, sources = resolve_settings(env, config, flags, batch_size=40)
    assert (settings.label, settings.app_id, settings.partitions, settings.batch_size) == (
        "conversion", "from-env", 7, 40)
    assert (sources["label"], sources["app_id"], sources["partitions"], sources["batch_size"]) == (
        f"file {config}", "environment", "flag --set", "command line")
    assert sources["web_port"] == "default"
    assert load_settings(env, config, flags) == settings.__class__(**{**dataclasses.asdict(settings), "batch_size": 30})


@pytest.mark.parametrize(("layer", "message"), [
    ("file", "STREAMSCORE_PARTITIONS='zero' is not valid: expected a whole number >= 1 (from file "),
    ("environment", "STREAMSCORE_PARTITIONS='zero' is not valid: expected a whole number >= 1"),
    ("flag", "STREAMSCORE_PARTITIONS='zero' is not valid: expected a whole number >= 1 (from flag --set)"),
])
def test_an_invalid_value_names_the_setting_the_range_and_where_it_was_set(tmp_path: Path, layer: str,
                                                                            message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('partitions = "zero"\n')
    layers: dict[str, dict[str, Any]] = {
        "file": {"env": {}, "config_file": config},
        "environment": {"env": {"STREAMSCORE_PARTITIONS": "zero"}},
        "flag": {"env": {}, "flags": flag_assignments(["partitions=zero"])},
    }
    kwargs = layers[layer]
    with pytest.raises(SettingsError) as raised:
        load_settings(**kwargs)
    assert str(raised.value).startswith(message)


def test_unknown_flags_and_malformed_assignments_are_refused() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting.*partitons"):
        flag_assignments(["partitons=3"])
    with pytest.raises(SettingsError, match="expected name=value"):
        flag_assignments(["=3"])


def test_show_settings_lists_every_setting_once_and_hides_the_key() -> None:
    settings, sources = resolve_settings({"STREAMSCORE_SNAPSHOT_KEY": "top-secret-key"})
    rows = show_settings(settings, sources)
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)) == len(dataclasses.fields(Settings)) - 1 + len(TOPIC_NAMES)
    shown = {name: (value, source) for name, value, source in rows}
    assert shown["snapshot_key"] == ("<hidden: 14 characters>", "environment")
    assert all("top-secret-key" not in value for _, value, _ in rows)


@pytest.mark.parametrize("raw", ["FNW", "fnc", ""])
def test_learn_from_names_the_choices_and_what_they_do(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"STREAMSCORE_LEARN_FROM": raw})
    assert str(info.value) == (
        f"STREAMSCORE_LEARN_FROM={raw!r} is not valid: expected auto, wait, fnw (wait: learn each example when "
        "its attribution window closes; fnw: learn at once with fake negatives; auto: fnw for clicks, wait for "
        "conversions; see docs/learning.md)")
    assert load_settings({}).learn_from == "auto"


@pytest.mark.parametrize("raw", ["1.5", "2"])
def test_negative_sample_rate_is_a_share(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"STREAMSCORE_NEGATIVE_SAMPLE_RATE": raw})
    assert str(info.value) == (f"STREAMSCORE_NEGATIVE_SAMPLE_RATE={float(raw)} is not valid: "
                               "expected a share in (0, 1]")
    assert load_settings({"STREAMSCORE_NEGATIVE_SAMPLE_RATE": "1"}).negative_sample_rate == 1.0
