"""The learner's report as Prometheus text: well-formed line by line, and the numbers are the report's."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from models.learner import Learner
from models.tripwire import Tripwire
from streams.ops.prometheus import format_value, prometheus

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
HELP = re.compile(rf"^# HELP ({NAME}) (.+)$")
TYPE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge)$")
SAMPLE = re.compile(rf"^({NAME})(?:\{{(.*)\}})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _labels(text: str | None) -> frozenset[tuple[str, str]]:
    if not text:
        return frozenset()
    pairs, pos = [], 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        assert m, f"bad label set {text!r} at {pos}"
        pairs.append((m.group(1), _unescape(m.group(2))))
        pos = m.end()
    return frozenset(pairs)


def parse(text: str) -> Samples:
    """Check the text exposition format line by line and return ``{(name, labels): value}``."""
    assert text.endswith("\n")
    helped: set[str] = set()
    typed: dict[str, str] = {}
    samples: Samples = {}
    for line in text.splitlines():
        if m := HELP.match(line):
            assert m.group(1) not in helped, f"second HELP for {m.group(1)}"
            helped.add(m.group(1))
        elif m := TYPE.match(line):
            name, kind = m.groups()
            assert name in helped and name not in typed, f"TYPE of {name} without HELP first, or twice"
            assert kind != "counter" or name.endswith("_total"), f"counter {name} must end in _total"
            typed[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, labels, value = m.group(1), _labels(m.group(2)), m.group(3)
            assert name in typed, f"sample of {name} before its TYPE"
            assert (name, labels) not in samples, f"duplicate sample {line!r}"
            samples[(name, labels)] = float(value)  # float() reads +Inf, -Inf and NaN too
    return samples


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def example(i: int, y: int, prod: float, arm: str) -> dict[str, Any]:
    return {"request_id": f"r{i}", "item_id": "a", "x": {"f": float(i)}, "y": y,
            "scores_at_serve": {"prod": prod, "baseline": 0.5}, "arm": arm, "served_model": "prod"}


@pytest.fixture
def report() -> dict[str, Any]:
    learner = Learner(["prod", "baseline"], snapshot_every=100, key=b"k", metrics_window=2,
                      tripwire=Tripwire(min_count=2))
    learner.learn_one(example(0, 1, 0.8, "A"))
    learner.learn_one(example(1, 0, 0.4, "A"))
    learner.learn_one(example(2, 1, 0.6, "B"))
    learner.learn_one(example(2, 1, 0.6, "B"))  # a duplicate
    learner.learn_one(example(3, 0, 0.9, "B"))
    learner.snapshots()
    return learner.report()


def test_the_exposition_parses_and_matches_the_report(report: dict[str, Any]) -> None:
    samples = parse(prometheus(report))
    # Hand-computed: prod scored (1, 0.8), (0, 0.4), (1, 0.6), (0, 0.9).
    cumulative = -(math.log(0.8) + math.log(0.6) + math.log(0.6) + math.log(0.1)) / 4
    assert get(samples, "streamscore_model_logloss", model="prod", arm="*", window="cumulative") == \
        pytest.approx(cumulative)
    recent = -(math.log(0.6) + math.log(0.1)) / 2  # the window holds the last two
    assert get(samples, "streamscore_model_logloss", model="prod", arm="*", window="recent") == pytest.approx(recent)
    assert get(samples, "streamscore_model_auc", model="prod", arm="*", window="cumulative") == 0.5  # 2 of 4 pairs
    assert get(samples, "streamscore_model_auc", model="prod", arm="A", window="recent") == 1.0
    assert get(samples, "streamscore_model_examples_total", model="prod", arm="*") == 4
    assert get(samples, "streamscore_model_examples_total", model="baseline", arm="B") == 2
    assert get(samples, "streamscore_model_recent_examples", model="prod", arm="*") == 2
    assert get(samples, "streamscore_model_logloss", model="baseline", arm="*", window="cumulative") == \
        pytest.approx(math.log(2.0))
    # Recent prod log loss 1.41 is worse than the baseline's 0.69: the tripwire is up.
    assert report["tripwire"]["alert"] is True
    assert get(samples, "streamscore_tripwire_alert", model="prod") == 1
    assert get(samples, "streamscore_tripwire_value", model="prod") == pytest.approx(recent)
    assert get(samples, "streamscore_experiment_examples_total", arm="B") == 2
    assert get(samples, "streamscore_experiment_label_rate", arm="A") == 0.5
    arm_a = -(math.log(0.8) + math.log(0.6)) / 2
    assert get(samples, "streamscore_experiment_logloss", arm="A") == pytest.approx(arm_a)
    assert get(samples, "streamscore_experiment_significant", a="A", b="B") == float(
        report["comparisons"][0]["significant"])
    assert get(samples, "streamscore_learner_examples_total") == 4
    assert get(samples, "streamscore_learner_duplicates_total") == 1
    assert get(samples, "streamscore_learner_rejected_total") == 0
    assert get(samples, "streamscore_snapshots_published_total", model="prod") == 1


def test_undefined_values_are_left_out(report: dict[str, Any]) -> None:
    # As when every example so far has one label: the AUC is undefined (None) and must not be exported.
    single = dict(report)
    single["models"] = {"prod": {"cumulative": dict(report["models"]["prod"]["cumulative"], auc=None),
                                 "recent": report["models"]["prod"]["recent"], "per_arm": {}}}
    samples = parse(prometheus(single))
    assert ("streamscore_model_auc", frozenset({("model", "prod"), ("arm", "*"), ("window", "cumulative")})) \
        not in samples
    assert get(samples, "streamscore_model_auc", model="prod", arm="*", window="recent") == \
        report["models"]["prod"]["recent"]["auc"]


def test_label_values_are_escaped(report: dict[str, Any]) -> None:
    odd = 'arm "x"\\\n'
    report["experiment"] = {odd: {"n": 3, "label_rate": None, "logloss": None}}
    samples = parse(prometheus(report))
    assert get(samples, "streamscore_experiment_examples_total", arm=odd) == 3
    assert not [key for key in samples if key[0] == "streamscore_experiment_label_rate"]


def test_an_empty_report_is_still_valid() -> None:
    learner = Learner(["prod"], snapshot_every=1, key=b"k", metrics_window=10, tripwire=Tripwire())
    samples = parse(prometheus(learner.report()))
    assert get(samples, "streamscore_model_examples_total", model="prod", arm="*") == 0
    assert get(samples, "streamscore_tripwire_alert", model="prod") == 0
    assert ("streamscore_model_logloss", frozenset({("model", "prod"), ("arm", "*"), ("window", "recent")})) \
        not in samples


def test_values_are_spelled_as_prometheus_reads_them() -> None:
    assert [format_value(v) for v in (False, 7, 0.1, math.inf, math.nan)] == ["0", "7", "0.1", "+Inf", "NaN"]
