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

from streams.core.early import LEARN_FROM
from streams.core.labels import LABEL_EVENTS, longest_window
from streams.core.records import TOPIC_NAMES

ENV_PREFIX = "STREAMSCORE_"

# Logical topic names: TOPIC_NAMES, from streams/core/records.py. The real name is prefix + logical name unless
# overridden by STREAMSCORE_TOPIC_<LOGICAL_NAME_IN_CAPS> (dashes become underscores).


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
    batch_size: int = 1000
    """Most events a worker processes between two checkpoints (a changed user's state is written once per
    checkpoint). It waits for none: what a fetch brought is processed and its outputs sent at once."""
    checkpoint_every: float = 0.25
    """Most seconds between an event processed and the checkpoint that makes its state durable (outputs
    acknowledged, states and clocks written; then its offset may be committed): work a crash would redo."""
    stall_after: float = 30.0
    """Wall-clock seconds a partition this worker owns may have records waiting with none of them processed
    before the worker calls it stalled, logs what its consumer believes and reads the partition itself
    (``streams/worker/stallwatch.py``); 0 turns the watch off. Liveness only: no data decision depends on it."""
    session_timeout: float = 10.0
    """Consumer-group session timeout in seconds (Kafka and noida-db reject values under 6)."""
    release_dead_member: bool = True
    """At start, send ``LeaveGroup`` for the group member a killed worker left in this data directory. Needed on
    noida-db, which never evicts dead members; on Kafka, which evicts them after the session timeout, it spares
    the restart that wait and the slow rebalance it ends with (see ``streams/worker/membership.py``)."""
    max_candidates: int = 500
    """Requests with more candidates are dead-lettered: a slot this large is a producer bug."""
    user_ttl: float = 30 * 86400.0
    """Event-time seconds of inactivity after which a user's features are forgotten."""
    expiry_sweep_every: float = 3600.0
    """Event-time seconds between two sweeps of a partition's state for expired users."""
    allowed_lateness: float = 60.0
    """Event-time seconds an event may arrive behind the newest one of its partition and still count as on time."""
    clock_max_jump: float = 900.0
    """Event-time seconds an event may lead its partition's clock (or its broker timestamp); a bigger jump waits
    for ``clock_confirmations`` later events to confirm it (``docs/event-time.md``)."""
    clock_confirmations: int = 3
    """Events after a bigger jump that must follow it before it moves the partition's clock."""
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
    negative_sample_rate: float = 1.0
    """Share of negative examples the learner learns from, each weighted 1/rate (McMahan et al. 2013), so its
    cost follows the positives; which ones is a hash of the example's key. 1 learns from all. The progressive
    metrics count every example either way."""
    learn_from: str = "auto"
    """What the learner learns from, and when (``docs/learning.md``): ``wait``, each example once its attribution
    window closed; ``fnw``, every served candidate at once as a (fake) negative and again as a positive when its
    label comes, with fake-negative weights (Ktena et al. 2019); ``auto``, fnw when the label is ``click`` and
    wait for ``conversion``, as measured (``streams.core.early.resolve_learn_from``). Set it on the workers: they
    emit what the learner learns; the window-closed examples still go out for the metrics either way."""
    learner_web_port: int = 6067
    """Port of the learner's HTTP views (/metrics, /metrics.json), on web_host."""
    item_features: bool = True
    """Item-side features (``docs/items.md``): rates and popularity of the candidate across users."""
    item_lag: float = 60.0
    """Event-time seconds after which an item update (an impression at its request's time, a label at its own
    time) becomes visible to every worker's item-side features (``docs/items.md``): the same rule in a replay
    and live; live, a delta that reaches a worker later than that is counted (``item_deltas_late``)."""
    item_half_life: float = 86400.0
    """Half-life, event-time seconds, of the decayed per-item impressions and labels."""
    item_max_keys: int = 200_000
    """Item keys (items and item/context attribute values) each worker keeps; the least recently updated go first."""
    item_prior_weight: float = 20.0
    """Pseudo-impressions at the global rate in an item's smoothed rate."""
    item_vectors: bool = False
    """Prod2Vec-style features (``docs/items.md``, "Item vectors"): the candidate's similarity to the user's items
    in item vectors the learner trains from every user's sequences and ships signed to the workers. Off by
    default: on every log measured they changed prod's AUC by less than 0.001, for ~80 µs per request."""
    item_vectors_every: float = 3600.0
    """Event-time seconds between versions of the item vectors (each trained on every event before its end)."""
    item_vectors_dim: int = 16
    """Numbers per item vector."""
    item_vectors_items: int = 1000
    """Items that get a vector: the most engaged ones (the factorisation is of an items x items matrix)."""
    item_vectors_window: int = 5
    """Previous distinct items of the user each engaged item is counted near."""
    baseline: str = "item_rate"
    """What the model named ``baseline`` (the tripwire's yardstick) is: ``item_rate`` (the smoothed rate of the
    candidate item, as served in its vector) or ``position_ctr`` (the smoothed CTR of the slot position)."""
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


_SIGNED = frozenset({ENV_PREFIX + "TRIPWIRE_MARGIN", ENV_PREFIX + "STALL_AFTER"})
"""Float settings that may be zero or negative (a stall_after of 0 or less turns the watch off); every other
float must be > 0."""


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
    _check_known(list(data), f"config file {path}")
    return {_env_name(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in data.items()}


def flag_assignments(assignments: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``--set name=value`` flags (names as in the TOML file) as the ``STREAMSCORE_*`` variables they stand for.

    >>> flag_assignments(["partitions=8", "label=conversion"])
    {'STREAMSCORE_PARTITIONS': '8', 'STREAMSCORE_LABEL': 'conversion'}
    >>> flag_assignments(["partitions"])
    Traceback (most recent call last):
    ...
    streams.settings.SettingsError: --set partitions: expected name=value, e.g. --set partitions=8
    """
    out: dict[str, str] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        name = name.strip().lower().replace("-", "_")
        if not sep or not name:
            raise SettingsError(f"--set {assignment}: expected name=value, e.g. --set partitions=8")
        _check_known([name], f"--set {assignment}")
        out[_env_name(name)] = value
    return out


def _known_names() -> tuple[set[str], set[str]]:
    """(field names, topic override names) a file or a flag may set."""
    return ({f.name for f in dataclasses.fields(Settings)} - {"topic_overrides"},
            {"topic_" + t.replace("-", "_") for t in TOPIC_NAMES})


def _check_known(names: list[str], where: str) -> None:
    fields, topics = _known_names()
    unknown = sorted(set(names) - fields - topics)
    if unknown:
        raise SettingsError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")


def _layers(env: Mapping[str, str], config_file: Path | None,
            flags: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """The winning raw value of every ``STREAMSCORE_*`` name set anywhere, and where it came from."""
    raw: dict[str, str] = {}
    source: dict[str, str] = {}
    layers: list[tuple[Mapping[str, str], str]] = []
    if config_file is not None:
        layers.append((read_config_file(config_file), f"file {config_file}"))
    layers += [(env, "environment"), (flags or {}, "flag --set")]
    for values, where in layers:
        for name, value in values.items():
            if name.startswith(ENV_PREFIX):
                raw[name], source[name] = value, where
    return raw, source


def load_settings(env: Mapping[str, str] | None = None, config_file: Path | None = None,
                  flags: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, then a TOML ``config_file``, then ``STREAMSCORE_*`` variables of ``env``, then
    ``flags`` (``--set``, see :func:`flag_assignments`), then keyword overrides: each one wins over the ones
    before it."""
    return resolve_settings(env, config_file, flags, **overrides)[0]


def resolve_settings(env: Mapping[str, str] | None = None, config_file: Path | None = None,
                     flags: Mapping[str, str] | None = None,
                     **overrides: Any) -> tuple[Settings, dict[str, str]]:
    """:func:`load_settings`, and where each field's value came from (``default``, ``file PATH``,
    ``environment``, ``flag --set``, ``command line``), for ``streamscore config show``.

    >>> settings, sources = resolve_settings({"STREAMSCORE_PARTITIONS": "8"}, flags={"STREAMSCORE_PARTITIONS": "6"})
    >>> settings.partitions, sources["partitions"], sources["app_id"]
    (6, 'flag --set', 'default')
    """
    raw, source = _layers(os.environ if env is None else env, config_file, flags)
    defaults = Settings()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for f in dataclasses.fields(Settings):
        if f.name == "topic_overrides":
            continue
        name = _env_name(f.name)
        sources[f.name] = source.get(name, "default")
        if name in raw:
            try:
                values[f.name] = _parse(name, raw[name], getattr(defaults, f.name))
            except SettingsError as exc:
                raise SettingsError(str(exc) if source[name] == "environment" else f"{exc} (from {source[name]})") \
                    from None
    topic_overrides = {}
    for logical in TOPIC_NAMES:
        name = _env_name("topic_" + logical.replace("-", "_"))
        if name in raw:
            topic_overrides[logical] = raw[name]
            sources["topic_" + logical.replace("-", "_")] = source[name]
    if topic_overrides:
        values["topic_overrides"] = topic_overrides
    values.update(overrides)
    sources.update({name: "command line" for name in overrides})
    settings = Settings(**values)
    _validate(settings)
    return settings, sources


MAX_CLOCK_CONFIRMATIONS = 100
"""Held events are kept in one record per partition, and wait for that many more: keep both small."""


BASELINES = ("item_rate", "position_ctr")
"""The models ``baseline`` may be (``models/registry.py``)."""


def _validate(settings: Settings) -> None:
    if not (0.0 < settings.negative_sample_rate <= 1.0):
        raise SettingsError(f"{_env_name('negative_sample_rate')}={settings.negative_sample_rate} is not valid: "
                            "expected a share in (0, 1]")
    if settings.learn_from not in LEARN_FROM:
        raise SettingsError(f"{_env_name('learn_from')}={settings.learn_from!r} is not valid: expected "
                            f"{', '.join(LEARN_FROM)} (wait: learn each example when its attribution window "
                            "closes; fnw: learn at once with fake negatives; auto: fnw for clicks, wait for "
                            "conversions; see docs/learning.md)")
    if settings.baseline not in BASELINES:
        raise SettingsError(f"{_env_name('baseline')}={settings.baseline!r} is not valid: expected "
                            f"{' or '.join(BASELINES)}")
    for name in ("item_lag", "item_half_life", "item_prior_weight"):
        value = getattr(settings, name)
        if not (math.isfinite(value) and value >= (0.0 if name == "item_lag" else 1e-9)):
            raise SettingsError(f"{_env_name(name)}={value} is not valid: expected a finite number "
                                f"{'>= 0' if name == 'item_lag' else '> 0'}")
    if settings.item_max_keys < 1:
        raise SettingsError(f"{_env_name('item_max_keys')}={settings.item_max_keys} is not valid: expected >= 1")
    every = settings.item_vectors_every
    if not (math.isfinite(every) and every >= 1 and every == int(every)):
        # Whole seconds: a version is numbered by the event time it is trained until.
        raise SettingsError(f"{_env_name('item_vectors_every')}={every} is not valid: expected a whole number "
                            "of seconds >= 1")
    for name, low, high in (("item_vectors_dim", 1, 256), ("item_vectors_items", 2, 20_000),
                            ("item_vectors_window", 1, 100)):
        value = getattr(settings, name)
        if not low <= value <= high:
            raise SettingsError(f"{_env_name(name)}={value} is not valid: expected a whole number {low}..{high}")
    if settings.label not in LABEL_EVENTS:
        expected = " or ".join(LABEL_EVENTS)
        raise SettingsError(f"{_env_name('label')}={settings.label!r} is not valid: expected {expected}")
    longest = longest_window(settings) + settings.allowed_lateness
    if settings.user_ttl <= longest:
        raise SettingsError(
            f"{_env_name('user_ttl')}={settings.user_ttl} is not valid: expected more than the longest attribution "
            f"window plus the allowed lateness ({longest:g} s), or waiting requests would be forgotten"
        )
    if settings.clock_max_jump < settings.allowed_lateness:
        raise SettingsError(
            f"{_env_name('clock_max_jump')}={settings.clock_max_jump} is not valid: expected at least the allowed "
            f"lateness ({settings.allowed_lateness:g} s), or ordinary disorder would refute a real jump"
        )
    if settings.clock_confirmations > MAX_CLOCK_CONFIRMATIONS:
        raise SettingsError(
            f"{_env_name('clock_confirmations')}={settings.clock_confirmations} is not valid: expected a whole "
            f"number 1..{MAX_CLOCK_CONFIRMATIONS} (a partition holds that many events while a jump is unconfirmed)"
        )
    if settings.session_timeout < 6:
        raise SettingsError(
            f"{_env_name('session_timeout')}={settings.session_timeout} is not valid: "
            "expected at least 6 seconds (noida-db rejects shorter session timeouts)"
        )


SECRETS = frozenset({"snapshot_key"})
"""Settings ``config show`` does not print."""


def show_settings(settings: Settings, sources: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(name, value as it would be written in the TOML file, source) of every setting, secrets masked.

    >>> rows = show_settings(*resolve_settings({}))
    >>> [row for row in rows if row[0] in ("partitions", "snapshot_key")]
    [('partitions', '4', 'default'), ('snapshot_key', '<hidden: 19 characters>', 'default')]
    """
    rows = []
    for f in dataclasses.fields(Settings):
        if f.name == "topic_overrides":
            continue
        value = getattr(settings, f.name)
        shown = (f"<hidden: {len(value)} characters>" if f.name in SECRETS
                 else str(value).lower() if isinstance(value, bool) else str(value))
        rows.append((f.name, shown, sources.get(f.name, "default")))
    for logical in TOPIC_NAMES:
        name = "topic_" + logical.replace("-", "_")
        rows.append((name, settings.topic(logical), sources.get(name, "default (topic_prefix + name)")))
    return rows


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
