"""The experiment and the scorer a worker runs, from the settings ``models``, ``arms`` and ``experiment_salt``.

``STREAMSCORE_MODELS`` lists the models that score every request (shadow scoring); ``STREAMSCORE_ARMS`` says
which of them each arm serves, as ``name:model:share`` separated by commas.

>>> from streams.settings import Settings
>>> settings = Settings(models="prod,baseline", arms="A:prod:0.5,B:baseline:0.5", experiment_salt="exp-1")
>>> experiment = experiment_from_settings(settings)
>>> [(arm.name, arm.model, arm.share) for arm in experiment.arms]
[('A', 'prod', 0.5), ('B', 'baseline', 0.5)]
>>> scorer = scorer_from_settings(settings)
>>> sorted(scorer.models), scorer.assign("u-42")  # unit_hash("exp-1", "u-42") = 0.311 < 0.5: arm A
(['baseline', 'prod'], ('A', 'prod'))
>>> experiment_from_settings(Settings(arms="A:prod:0.5,B:baseline:0.4"))
Traceback (most recent call last):
...
streams.settings.SettingsError: STREAMSCORE_ARMS='A:prod:0.5,B:baseline:0.4' is not valid: arm shares must sum to 1, ...
"""

from __future__ import annotations

import math

from models.arms import Arm, Experiment
from models.registry import MODELS
from models.scorer import Scorer
from streams.settings import Settings, SettingsError

__all__ = ["experiment_from_settings", "model_names", "scorer_from_settings"]

_ARMS = "STREAMSCORE_ARMS"
_MODELS = "STREAMSCORE_MODELS"
_FORMAT = "expected name:model:share separated by commas, e.g. A:prod:0.5,B:baseline:0.5"


def model_names(settings: Settings) -> list[str]:
    """The names of ``settings.models``, in order; each must be declared in ``models/registry.py``.

    >>> model_names(Settings(models=" prod , baseline "))
    ['prod', 'baseline']
    >>> model_names(Settings(models="prod,gbm"))
    Traceback (most recent call last):
    ...
    streams.settings.SettingsError: STREAMSCORE_MODELS='prod,gbm' is not valid: unknown model 'gbm'; declared: ...
    """

    def bad(problem: str) -> SettingsError:
        return SettingsError(f"{_MODELS}={settings.models!r} is not valid: {problem}")

    names = [name.strip() for name in settings.models.split(",")]
    if not any(names):
        raise bad("expected at least one model name, e.g. prod,baseline")
    if not all(names):
        raise bad("an empty model name (two commas in a row, or one at an end?)")
    for name in names:
        if name not in MODELS:
            raise bad(f"unknown model {name!r}; declared: {', '.join(sorted(MODELS))}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise bad(f"models listed more than once: {repeated}")
    return names


def experiment_from_settings(settings: Settings) -> Experiment:
    """The arms of ``settings.arms`` with ``settings.experiment_salt``.

    Raises :class:`~streams.settings.SettingsError` (a :class:`ValueError`) naming ``STREAMSCORE_ARMS`` and the
    problem: an entry that is not ``name:model:share``, a share that is not a number > 0, a model that is not
    in ``STREAMSCORE_MODELS`` (an arm can only serve a score that every request computes), repeated arm names,
    or shares that do not sum to 1.
    """

    def bad(problem: str) -> SettingsError:
        return SettingsError(f"{_ARMS}={settings.arms!r} is not valid: {problem}")

    live = model_names(settings)
    entries = [entry.strip() for entry in settings.arms.split(",")]
    if not any(entries):
        raise bad(f"no arms; {_FORMAT}")
    arms = []
    for entry in entries:
        parts = [part.strip() for part in entry.split(":")]
        if len(parts) != 3 or not all(parts):
            raise bad(f"arm {entry!r} is not name:model:share; {_FORMAT}")
        name, model, share_text = parts
        try:
            share = float(share_text)
        except ValueError:
            raise bad(f"arm {name!r}: the share {share_text!r} is not a number") from None
        if not (math.isfinite(share) and share > 0.0):
            raise bad(f"arm {name!r}: the share must be a number > 0, got {share_text!r}")
        if model not in MODELS:
            raise bad(f"arm {name!r} serves unknown model {model!r}; declared: {', '.join(sorted(MODELS))}")
        if model not in live:
            raise bad(f"arm {name!r} serves model {model!r}, which is not in {_MODELS}={settings.models!r}")
        arms.append(Arm(name, model, share))
    try:
        return Experiment(settings.experiment_salt, tuple(arms))
    except ValueError as exc:  # repeated names, shares not summing to 1: Experiment says which
        raise bad(str(exc)) from None


def scorer_from_settings(settings: Settings) -> Scorer:
    """A scorer with a fresh (version 0) model for every name in ``settings.models``, serving the user's arm."""
    experiment = experiment_from_settings(settings)

    def assign(user_id: str) -> tuple[str, str]:
        arm = experiment.assign(user_id)
        return arm.name, arm.model

    return Scorer.fresh(model_names(settings), assign, settings.baseline)
