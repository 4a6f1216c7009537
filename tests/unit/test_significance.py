import math
import random

import pytest

from models.significance import ArmSample, compare_arms


def simulate(rng: random.Random, n: int, rate: float, skill: float = 0.0) -> ArmSample:
    """n examples with click rate ``rate``; the model's score moves towards the label by ``skill``."""
    sample = ArmSample()
    for _ in range(n):
        y = rng.random() < rate
        p = min(max(rate + (skill if y else -skill) + rng.gauss(0, 0.02), 0.001), 0.999)
        sample.update_one(y, -math.log(p) if y else -math.log(1 - p))
    return sample


def test_running_sums_match_the_lists():
    labels = [True, False, False, True, False]
    losses = [0.5, 0.1, 0.2, 1.5, 0.05]
    sample = ArmSample.from_lists(labels, losses)
    assert (sample.n, sample.positives, sample.label_rate) == (5, 2, 0.4)
    mean = sum(losses) / 5
    assert sample.loss_mean == pytest.approx(mean)
    assert sample.loss_variance == pytest.approx(sum((x - mean) ** 2 for x in losses) / 4)
    with pytest.raises(ValueError):
        ArmSample.from_lists([True], [0.1, 0.2])
    with pytest.raises(ValueError):
        sample.update_one(True, float("nan"))


def test_label_rate_interval_hand_computed():
    a = ArmSample.from_lists([True] * 100 + [False] * 900, [0.3] * 1000)
    b = ArmSample.from_lists([True] * 150 + [False] * 850, [0.3] * 1000)
    diff = compare_arms(a, b).label_rate
    assert diff is not None
    half = 1.959963984540054 * math.sqrt(0.1 * 0.9 / 1000 + 0.15 * 0.85 / 1000)  # 0.028906
    assert diff.estimate == pytest.approx(0.05)
    assert (diff.low, diff.high) == (pytest.approx(0.05 - half), pytest.approx(0.05 + half))
    assert diff.excludes_zero


def test_welch_interval_matches_a_reference():
    # scipy.stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95) gives (-0.38536808, 7.38536808):
    # means 6 and 2.5, variances 10 and 5/3, Welch-Satterthwaite df = 5.52
    a = ArmSample.from_lists([False] * 4, [1, 2, 3, 4])
    b = ArmSample.from_lists([False] * 5, [2, 4, 6, 8, 10])
    result = compare_arms(a, b)
    assert result.logloss is not None
    assert result.logloss.estimate == pytest.approx(3.5)
    assert result.logloss.low == pytest.approx(-0.3853680805140449, rel=1e-9)
    assert result.logloss.high == pytest.approx(7.385368080514045, rel=1e-9)
    assert result.label_rate is not None and result.label_rate.estimate == 0.0
    assert result.significant is False


def test_a_a_is_not_flagged():
    rng = random.Random(20240601)
    a, b = simulate(rng, 5000, 0.1, skill=0.05), simulate(rng, 5000, 0.1, skill=0.05)
    result = compare_arms(a, b)
    assert result.significant is False
    assert result.label_rate is not None and result.logloss is not None
    assert result.label_rate.low < 0 < result.label_rate.high
    assert result.logloss.low < 0 < result.logloss.high


def test_a_a_false_alarm_rate_and_coverage():
    rng = random.Random(5)
    runs, flagged, label_covered = 200, 0, 0
    for _ in range(runs):
        result = compare_arms(simulate(rng, 500, 0.2, skill=0.1), simulate(rng, 500, 0.2, skill=0.1))
        flagged += result.significant
        assert result.label_rate is not None
        label_covered += not result.label_rate.excludes_zero
    assert 0.90 <= label_covered / runs <= 0.99  # a 95 % interval covers the true difference (0)
    assert flagged / runs <= 0.15  # two 95 % intervals: at most ~10 % false alarms


def test_a_clearly_different_b_is_flagged():
    rng = random.Random(1)
    a = simulate(rng, 5000, 0.10, skill=0.05)
    better_labels = simulate(rng, 5000, 0.15, skill=0.05)
    result = compare_arms(a, better_labels)
    assert result.significant and result.label_rate is not None and result.label_rate.low > 0
    worse_model = simulate(rng, 5000, 0.10, skill=-0.03)  # same labels, worse scores
    result = compare_arms(a, worse_model)
    assert result.significant and result.logloss is not None and result.logloss.low > 0


def test_small_and_degenerate_samples():
    empty = ArmSample()
    one = ArmSample.from_lists([True], [0.1])
    result = compare_arms(empty, one)
    assert result.label_rate is None and result.logloss is None and result.significant is False
    result = compare_arms(one, one)
    assert result.label_rate is not None and result.logloss is None
    constant = ArmSample.from_lists([False] * 3, [0.2] * 3)
    shifted = ArmSample.from_lists([False] * 3, [0.4] * 3)
    diff = compare_arms(constant, shifted).logloss
    assert diff is not None and diff.low == diff.high == pytest.approx(0.2)
    with pytest.raises(ValueError):
        compare_arms(one, one, confidence=1.0)


def test_confidence_level_widens_the_interval():
    rng = random.Random(2)
    a, b = simulate(rng, 1000, 0.1), simulate(rng, 1000, 0.12)
    narrow, wide = compare_arms(a, b, confidence=0.8), compare_arms(a, b, confidence=0.99)
    assert narrow.label_rate is not None and wide.label_rate is not None
    assert wide.label_rate.low < narrow.label_rate.low < narrow.label_rate.high < wide.label_rate.high
