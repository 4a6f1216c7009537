"""Arm comparisons with intervals over buckets of users: sums, hand-computed variances, A/A and A/B."""

from __future__ import annotations

import random

import pytest

from models.significance import ArmSample, compare_arms


def test_bucket_sums_give_the_overall_figures() -> None:
    labels = [True, False, False, True, False]
    losses = [1.0, 0.5, 0.25, 2.0, 0.25]
    sample = ArmSample.from_lists(labels, losses, units=["u1", "u2", "u1", "u3", "u2"])
    assert (sample.n, sample.positives, sample.label_rate, sample.loss_mean) == (5, 2, 0.4, 0.8)
    assert sum(sample.n_b) == 5 and len(sample.n_b) == sample.buckets


def test_one_users_examples_stay_in_one_bucket() -> None:
    sample = ArmSample()
    for i in range(50):
        sample.update_one(i % 2 == 0, 0.1, unit="the-same-user")
    assert sorted(n for n in sample.n_b if n) == [50]
    assert sample.ratio("label_rate") is None  # one unit: no spread to estimate a variance from


def test_delta_method_variance_hand_computed() -> None:
    # Two buckets of 10 examples with 1 and 3 positives: r = 0.2, Y_b - r N_b = -1 and +1,
    # var = B / (B - 1) * ((-1)^2 + 1^2) / 20^2 = 2 * 2 / 400 = 0.01.
    sample = ArmSample(buckets=2, n_b=[10, 10], positives_b=[1, 3], loss_b=[2.0, 6.0])
    est = sample.ratio("label_rate")
    assert est is not None
    assert (est.value, est.variance, est.df) == (pytest.approx(0.2), pytest.approx(0.01), 1)
    loss = sample.ratio("logloss")  # 8 / 20 = 0.4; 2 - 4 = -2, 6 - 4 = 2: var = 2 * 8 / 400 = 0.04
    assert loss is not None and (loss.value, loss.variance) == (pytest.approx(0.4), pytest.approx(0.04))
    low, high = sample.interval("label_rate") or (0.0, 0.0)
    assert (low, high) == (pytest.approx(0.2 - 12.7062 * 0.1, abs=1e-3), pytest.approx(0.2 + 12.7062 * 0.1, abs=1e-3))


def _clustered_arm(rng: random.Random, users: range, base_rate: float, prefix: str) -> ArmSample:
    """Users with rates of their own (some click a lot) and many examples each: examples are not i.i.d."""
    sample = ArmSample()
    for user in users:
        rate = min(0.9, rng.betavariate(0.5, 0.5 / base_rate - 0.5))
        for _ in range(rng.randint(5, 60)):
            y = rng.random() < rate
            sample.update_one(y, 2.0 if y else 0.1 + rate, unit=f"{prefix}{user}")
    return sample


def _per_example(sample: ArmSample, rng: random.Random) -> ArmSample:
    """The same examples, each its own unit: what an analysis that ignores users would see."""
    flat = ArmSample()
    for bucket in range(sample.buckets):
        for i in range(sample.n_b[bucket]):
            y = i < sample.positives_b[bucket]
            flat.update_one(y, 2.0 if y else 0.1, unit=str(rng.random()))
    return flat


def test_a_a_with_clustered_users_is_rarely_flagged_and_per_example_intervals_would_be() -> None:
    rng = random.Random(11)
    runs = 60
    flagged = flagged_per_example = 0
    for _ in range(runs):
        a = _clustered_arm(rng, range(150), 0.1, "a")
        b = _clustered_arm(rng, range(150), 0.1, "b")
        flagged += compare_arms(a, b).label_rate.excludes_zero  # type: ignore[union-attr]
        flagged_per_example += compare_arms(_per_example(a, rng), _per_example(b, rng)).label_rate.excludes_zero  # type: ignore[union-attr]
    assert flagged / runs <= 0.12  # nominal 5 %, with room for 60 runs
    assert flagged_per_example / runs >= 0.3  # why the buckets: per-example intervals cry wolf


def test_a_clearly_different_b_is_flagged() -> None:
    rng = random.Random(3)
    a = _clustered_arm(rng, range(300), 0.08, "a")
    b = _clustered_arm(rng, range(300), 0.20, "b")
    result = compare_arms(a, b)
    assert result.significant and result.label_rate is not None and result.label_rate.low > 0


def test_too_few_buckets_give_no_interval_and_no_alarm() -> None:
    a, b = ArmSample(), ArmSample()
    a.update_one(True, 1.0, unit="u1")
    b.update_one(False, 0.1, unit="u2")
    result = compare_arms(a, b)
    assert (result.label_rate, result.logloss, result.significant) == (None, None, False)


def test_a_higher_confidence_widens_the_interval() -> None:
    rng = random.Random(5)
    a, b = _clustered_arm(rng, range(100), 0.1, "a"), _clustered_arm(rng, range(100), 0.12, "b")
    d90, d99 = compare_arms(a, b, confidence=0.90).label_rate, compare_arms(a, b, confidence=0.99).label_rate
    assert d90 is not None and d99 is not None
    assert d99.low < d90.low < d90.estimate < d90.high < d99.high
    with pytest.raises(ValueError, match="confidence"):
        compare_arms(a, b, confidence=1.0)
