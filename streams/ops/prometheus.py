"""The learner's report in the Prometheus text exposition format (version 0.0.4), for ``GET /metrics``.

Every family gets ``# HELP`` and ``# TYPE`` lines; a value the report leaves undefined (``None``: no data yet,
an AUC with one class only) is left out rather than exported as ``NaN``, so an alert rule on it stays silent
instead of comparing against NaN. A model's metrics over all arms carry ``arm="*"`` (the name the metrics book
reserves for them, so no real arm can collide with it).

>>> text = prometheus({"examples": 3, "duplicates": 1, "rejected": 0, "snapshots": {"prod": 2},
...                    "models": {}, "tripwire": {"alert": True, "prod": 0.7, "baseline": 0.5},
...                    "experiment": {}, "comparisons": []})
>>> print("\\n".join(line for line in text.splitlines() if "duplicates" in line or "_tripwire_alert{" in line))
streamscore_tripwire_alert{model="prod"} 1
# HELP streamscore_learner_duplicates_total Redelivered examples the learner skipped.
# TYPE streamscore_learner_duplicates_total counter
streamscore_learner_duplicates_total 1

"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from models.metrics import ALL_ARMS

__all__ = ["CONTENT_TYPE", "family", "format_value", "histogram_family", "prometheus"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[dict[str, str], Any]

_WINDOWS = ("cumulative", "recent")
# (report key, family name, help) of the per-model gauges, one sample per (model, arm, window).
_MODEL_GAUGES = (
    ("logloss", "streamscore_model_logloss", "Progressive log loss of the model's scores at serve time."),
    ("auc", "streamscore_model_auc", "Progressive ROC AUC of the model's scores at serve time."),
    ("calibration", "streamscore_model_calibration", "Mean score over label rate (1 is calibrated)."),
    ("label_rate", "streamscore_model_label_rate", "Share of positive examples."),
    ("mean_score", "streamscore_model_mean_score", "Mean score at serve time."),
)


def format_value(value: float | int | bool) -> str:
    """A sample value as Prometheus spells it.

    >>> [format_value(v) for v in (True, 3, 0.25, 1e-20, math.inf, -math.inf, math.nan)]
    ['1', '3', '0.25', '1e-20', '+Inf', '-Inf', 'NaN']
    """
    if isinstance(value, int):  # bool included
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def family(name: str, kind: str, help_text: str, samples: list[Sample]) -> Iterator[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} {kind}"
    for labels, value in samples:
        if value is None:
            continue
        rendered = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        yield f"{name}{{{rendered}}} {format_value(value)}" if rendered else f"{name} {format_value(value)}"


def histogram_family(name: str, help_text: str, histograms: list[tuple[dict[str, str], Any]]) -> Iterator[str]:
    """A histogram family from ``(labels, LatencyHistogram-like)`` pairs: anything with ``cumulative()``
    (``(upper bound, count)`` pairs ending with infinity), ``sum`` and ``count``."""
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} histogram"
    for labels, histogram in histograms:
        rendered = "".join(f'{k}="{_escape(str(v))}",' for k, v in labels.items())
        for bound, count in histogram.cumulative():
            yield f'{name}_bucket{{{rendered}le="{format_value(float(bound))}"}} {count}'
        plain = "{" + rendered.rstrip(",") + "}" if rendered else ""
        yield f"{name}_sum{plain} {format_value(float(histogram.sum))}"
        yield f"{name}_count{plain} {histogram.count}"


def _per_model(models: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(model, arm, {"cumulative": ..., "recent": ...}) over all arms first, then per arm."""
    for model, report in models.items():
        yield model, ALL_ARMS, report
        for arm, arm_report in report.get("per_arm", {}).items():
            yield model, arm, arm_report


def prometheus(report: Mapping[str, Any]) -> str:
    """Render :meth:`models.learner.Learner.report` as Prometheus text (ends with a newline)."""
    models = report.get("models", {})
    rows = list(_per_model(models))
    lines: list[str] = []
    for key, name, help_text in _MODEL_GAUGES:
        samples = [({"model": model, "arm": arm, "window": window}, r[window].get(key))
                   for model, arm, r in rows for window in _WINDOWS]
        lines += family(name, "gauge", help_text, samples)
    lines += family("streamscore_model_examples_total", "counter",
                     "Examples the model's metrics counted since the start.",
                     [({"model": model, "arm": arm}, r["cumulative"]["n"]) for model, arm, r in rows])
    lines += family("streamscore_model_recent_examples", "gauge",
                     "Examples in the model's recent window.",
                     [({"model": model, "arm": arm}, r["recent"]["n"]) for model, arm, r in rows])
    tripwire = report.get("tripwire", {})
    lines += family("streamscore_tripwire_alert", "gauge",
                     "1 when the production model is no better than the baseline on recent data.",
                     [({"model": "prod"}, bool(tripwire.get("alert")))])
    lines += family("streamscore_arm_tripwire_alert", "gauge",
                    "1 when the model an arm serves is no better than the baseline on that arm's recent data.",
                    [({"arm": arm, "model": t.get("model", "")}, bool(t.get("alert")))
                     for arm, t in tripwire.get("arms", {}).items()])
    lines += family("streamscore_tripwire_value", "gauge",
                     "The recent metric the tripwire compares, per side.",
                     [({"model": side}, tripwire.get(side)) for side in ("prod", "baseline")])
    experiment = report.get("experiment", {})
    lines += family("streamscore_experiment_examples_total", "counter", "Examples served by the arm.",
                     [({"arm": arm}, e["n"]) for arm, e in experiment.items()])
    lines += family("streamscore_experiment_label_rate", "gauge", "Share of positive examples in the arm.",
                     [({"arm": arm}, e["label_rate"]) for arm, e in experiment.items()])
    lines += family("streamscore_experiment_logloss", "gauge", "Mean log loss of the scores the arm served.",
                     [({"arm": arm}, e["logloss"]) for arm, e in experiment.items()])
    lines += family("streamscore_experiment_significant", "gauge",
                     "1 when a confidence interval of arm b minus arm a excludes 0.",
                     [({"a": c["a"], "b": c["b"]}, bool(c["significant"])) for c in report.get("comparisons", [])])
    lines += family("streamscore_learner_examples_total", "counter", "Distinct examples the learner learned.",
                     [({}, report.get("examples"))])
    lines += family("streamscore_learner_duplicates_total", "counter", "Redelivered examples the learner skipped.",
                     [({}, report.get("duplicates"))])
    lines += family("streamscore_learner_rejected_total", "counter", "Malformed example records the learner skipped.",
                     [({}, report.get("rejected"))])
    lines += family("streamscore_snapshots_published_total", "counter",
                     "Snapshot rounds of the model (its newest version).",
                     [({"model": model}, version) for model, version in report.get("snapshots", {}).items()])
    return "\n".join(lines) + "\n"
