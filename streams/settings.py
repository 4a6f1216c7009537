"""Every setting of streamscore, in one place.

Values come from defaults that work on a laptop, overridden by ``STREAMSCORE_<NAME>`` environment variables
(for example ``STREAMSCORE_BOOTSTRAP=kafka:9092``). Every other module receives a :class:`Settings` and reads
from it; nothing else looks at the environment.

>>> s = load_settings({"STREAMSCORE_PARTITIONS": "8", "STREAMSCORE_TOPIC_PREFIX": "t1."})
>>> s.partitions, s.topic("events"), s.topic("dead-letter")
(8, 't1.events', 't1.dead-letter')
>>> load_settings({"STREAMSCORE_PARTITIONS": "zero"})
Traceback (most recent call last):
...
streams.settings.SettingsError: STREAMSCORE_PARTITIONS='zero' is not valid: expected a whole number >= 1
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "STREAMSCORE_"

# Logical topic names (DESIGN.md, "Topics"). The real name is prefix + logical name unless overridden by
# STREAMSCORE_TOPIC_<LOGICAL_NAME_IN_CAPS> (dashes become underscores).
TOPIC_NAMES = ("events", "scores", "feature-log", "examples", "model-snapshots", "metrics", "dead-letter")


class SettingsError(ValueError):
    """A setting has a value outside what it accepts; the message names the variable and the range."""


@dataclass(frozen=True)
class Settings:
    bootstrap: str = "127.0.0.1:9092"
    """Kafka bootstrap address, host:port (comma-separated for several)."""
    app_id: str = "streamscore"
    """faust application id: the consumer group and the prefix of changelog topics."""
    partitions: int = 4
    """Partitions of the user-keyed topics (events, scores, feature-log) and of the state changelogs."""
    replication: int = 1
    topic_prefix: str = ""
    topic_overrides: Mapping[str, str] = field(default_factory=dict)
    data_dir: Path = Path(".data")
    """Where RocksDB state, the local broker's data and the demo's files live."""
    web_host: str = "127.0.0.1"
    """Address the worker's HTTP views bind to; localhost unless you mean to expose them."""
    web_port: int = 6066
    web_enabled: bool = True
    batch_size: int = 500
    """Events a worker takes from the stream at once; state is read and written once per user per batch."""
    batch_within: float = 0.05
    """Seconds a worker waits to fill a batch before it processes what it has."""
    session_timeout: float = 10.0
    """Consumer-group session timeout in seconds (noida-db rejects values under 6)."""
    max_candidates: int = 500
    """Requests with more candidates are dead-lettered: a slot this large is a producer bug."""
    user_ttl: float = 30 * 86400.0
    """Event-time seconds of inactivity after which a user's features are forgotten."""
    expiry_sweep_every: float = 3600.0
    """Event-time seconds between two sweeps of a partition's state for expired users."""
    allowed_lateness: float = 60.0
    """Event-time seconds an event may arrive behind the newest one of its partition and still count as on time."""
    label: str = "click"
    """Which event type is the label: ``click`` or ``conversion`` (the other one is an ordinary interaction)."""
    click_window: float = 3600.0
    """Attribution window of clicks, event-time seconds after the request."""
    conversion_window: float = 86400.0
    """Attribution window of conversions, event-time seconds after the request."""
    max_pending: int = 32
    """Requests a user may have waiting for labels; beyond it the oldest closes early (counted)."""
    models: str = "prod,baseline"
    """Models that score every request (shadow scoring), by name from ``models/registry.py``."""
    arms: str = "A:prod:1.0"
    """Experiment arms, ``name:model:share`` separated by commas, shares summing to 1
    (e.g. ``A:prod:0.5,B:baseline:0.5``)."""
    experiment_salt: str = "exp-1"
    """Salt of the stable user-to-arm hash: change it to re-draw the arms."""
    snapshot_every: int = 500
    """The learner publishes a snapshot of every model after this many new examples ..."""
    snapshot_seconds: float = 30.0
    """... or after this many seconds with at least one new example, whichever comes first."""
    snapshot_key: str = "streamscore-dev-key"
    """HMAC key that signs model snapshots; set your own secret in production (workers refuse other signatures)."""
    metrics_window: int = 1000
    """Examples in the "recent" window of the progressive metrics (and the tripwire)."""
    tripwire_margin: float = 0.0
    """prod must beat baseline's recent log loss by at least this much, or the tripwire raises an alert."""
    tripwire_min_count: int = 200
    """Recent examples each model needs before the tripwire judges."""
    learner_max_seen: int = 100_000
    """Example keys the learner remembers to skip redeliveries; a redelivery follows its original within a
    worker's commit interval, so this only needs to cover that (the checkpoint grows ~25 bytes per key)."""
    learner_web_port: int = 6067
    """Port of the learner's HTTP views (/metrics, /metrics.json), on web_host."""
    model_seed: int = 42
    log_level: str = "info"

    def topic(self, logical: str) -> str:
        """The real topic name for a logical name of DESIGN.md ('events', 'scores', ...)."""
        if logical not in TOPIC_NAMES:
            raise KeyError(f"unknown topic {logical!r}; known: {', '.join(TOPIC_NAMES)}")
        return self.topic_overrides.get(logical, self.topic_prefix + logical)

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"


def _env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


_SIGNED = frozenset({ENV_PREFIX + "TRIPWIRE_MARGIN"})
"""Float settings that may be zero or negative; every other float must be > 0."""


def _parse(name: str, raw: str, default: Any) -> Any:
    def bad(expected: str) -> SettingsError:
        return SettingsError(f"{name}={raw!r} is not valid: expected {expected}")

    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise bad("true or false")
    if isinstance(default, int):
        high, expected = (65535, "a port 1..65535") if name.endswith("_PORT") else (None, "a whole number >= 1")
        try:
            value = int(raw)
        except ValueError:
            raise bad(expected) from None
        if value < 1 or (high is not None and value > high):
            raise bad(expected)
        return value
    if isinstance(default, float):
        signed = name in _SIGNED
        expected = "a finite number" if signed else "a finite number > 0"
        try:
            number = float(raw)
        except ValueError:
            raise bad(expected) from None
        if not (math.isfinite(number) if signed else 0 < number < math.inf):
            raise bad(expected)
        return number
    if isinstance(default, Path):
        return Path(raw)
    return raw


def read_config_file(path: Path) -> dict[str, str]:
    r"""A TOML file of settings (``click_window = 1800``) as the ``STREAMSCORE_*`` variables it stands for.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
    ...     _ = f.write('label = "conversion"\nconversion_window = 7200\n')
    >>> read_config_file(Path(f.name))
    {'STREAMSCORE_LABEL': 'conversion', 'STREAMSCORE_CONVERSION_WINDOW': '7200'}
    """
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"config file {path}: {exc}") from None
    known = {f.name for f in dataclasses.fields(Settings)} - {"topic_overrides"}
    topics = {"topic_" + t.replace("-", "_") for t in TOPIC_NAMES}
    unknown = sorted(set(data) - known - topics)
    if unknown:
        raise SettingsError(f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
    return {_env_name(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in data.items()}


def load_settings(env: Mapping[str, str] | None = None, config_file: Path | None = None,
                  **overrides: Any) -> Settings:
    """Settings from defaults, then a TOML ``config_file``, then ``STREAMSCORE_*`` variables of ``env``, then
    keyword overrides (e.g. command-line flags): each one wins over the ones before it."""
    env = os.environ if env is None else env
    if config_file is not None:
        env = {**read_config_file(config_file), **env}
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if f.name == "topic_overrides":
            continue
        name = _env_name(f.name)
        if name in env:
            values[f.name] = _parse(name, env[name], getattr(defaults, f.name))
    topic_overrides = {
        logical: env[_env_name("topic_" + logical.replace("-", "_"))]
        for logical in TOPIC_NAMES
        if _env_name("topic_" + logical.replace("-", "_")) in env
    }
    if topic_overrides:
        values["topic_overrides"] = topic_overrides
    values.update(overrides)
    settings = Settings(**values)
    if settings.label not in ("click", "conversion"):
        raise SettingsError(f"{_env_name('label')}={settings.label!r} is not valid: expected click or conversion")
    longest_window = max(settings.click_window, settings.conversion_window) + settings.allowed_lateness
    if settings.user_ttl <= longest_window:
        raise SettingsError(
            f"{_env_name('user_ttl')}={settings.user_ttl} is not valid: expected more than the longest attribution "
            f"window plus the allowed lateness ({longest_window:g} s), or waiting requests would be forgotten"
        )
    if settings.session_timeout < 6:
        raise SettingsError(
            f"{_env_name('session_timeout')}={settings.session_timeout} is not valid: "
            "expected at least 6 seconds (noida-db rejects shorter session timeouts)"
        )
    return settings


def to_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce ``settings`` in another process (workers, tests)."""
    env: dict[str, str] = {}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if f.name == "topic_overrides":
            for logical, real in value.items():
                env[_env_name("topic_" + logical.replace("-", "_"))] = real
        elif isinstance(value, bool):
            env[_env_name(f.name)] = "true" if value else "false"
        else:
            env[_env_name(f.name)] = str(value)
    return env
