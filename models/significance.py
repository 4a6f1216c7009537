"""Is arm B different from arm A? Differences with confidence intervals, for ``streamscore experiment``.

Each arm is summarised by running sums (:class:`ArmSample`), so a report never needs the examples again:

- the **label rate** difference, with the normal-approximation (Wald) interval for two proportions;
- the **mean log loss** difference, with Welch's t interval (unequal variances, Welch-Satterthwaite degrees
  of freedom).

Differences are ``b - a``. The comparison is ``significant`` when any interval excludes 0. Two intervals at
95 % each make a false alarm more likely than 5 % (up to about 10 %); read them as a screen, not a verdict.

>>> a = ArmSample.from_lists([True] * 100 + [False] * 900, [2.0] * 100 + [0.1] * 900)
>>> b = ArmSample.from_lists([True] * 150 + [False] * 850, [2.0] * 150 + [0.1] * 850)
>>> result = compare_arms(a, b)
>>> diff = result.label_rate  # 0.05 +/- 1.96 * sqrt(0.1 * 0.9 / 1000 + 0.15 * 0.85 / 1000)
>>> round(diff.estimate, 6), round(diff.low, 4), round(diff.high, 4)
(0.05, 0.0211, 0.0789)
>>> result.significant
True

"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["ArmSample", "Comparison", "Difference", "compare_arms"]


@dataclass
class ArmSample:
    """Running sums of one arm: examples, positives, and the mean and spread of the per-example log loss.

    The loss variance is accumulated with Welford's method, stable over millions of examples.

    >>> sample = ArmSample()
    >>> for y, loss in [(True, 1.0), (False, 2.0), (False, 3.0)]:
    ...     sample.update_one(y, loss)
    >>> sample.n, sample.positives, sample.label_rate, sample.loss_mean, sample.loss_variance
    (3, 1, 0.333..., 2.0, 1.0)
    """

    n: int = 0
    positives: int = 0
    loss_mean: float = 0.0
    loss_m2: float = 0.0
    """Sum of squared deviations of the loss from its mean."""

    def update_one(self, y: bool, loss: float) -> None:
        if not (math.isfinite(loss) and loss >= 0.0):
            raise ValueError(f"a log loss must be a finite number >= 0, got {loss!r}")
        self.n += 1
        self.positives += bool(y)
        delta = loss - self.loss_mean
        self.loss_mean += delta / self.n
        self.loss_m2 += delta * (loss - self.loss_mean)

    @classmethod
    def from_lists(cls, labels: Iterable[bool], losses: Iterable[float]) -> ArmSample:
        """Summarise paired lists of labels and per-example log losses (of the same length)."""
        labels, losses = list(labels), list(losses)
        if len(labels) != len(losses):
            raise ValueError(f"{len(labels)} labels but {len(losses)} losses")
        sample = cls()
        for y, loss in zip(labels, losses, strict=True):
            sample.update_one(y, loss)
        return sample

    @property
    def label_rate(self) -> float | None:
        return self.positives / self.n if self.n else None

    @property
    def loss_variance(self) -> float | None:
        """The sample variance (n - 1 in the denominator) of the log loss."""
        return self.loss_m2 / (self.n - 1) if self.n > 1 else None


@dataclass(frozen=True)
class Difference:
    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


@dataclass(frozen=True)
class Comparison:
    label_rate: Difference | None
    """B's label rate minus A's; ``None`` if an arm is empty."""
    logloss: Difference | None
    """B's mean log loss minus A's; ``None`` if an arm has fewer than 2 examples."""
    significant: bool
    """Whether any of the intervals excludes 0."""
    confidence: float


def _label_rate(a: ArmSample, b: ArmSample, z: float) -> Difference | None:
    if a.n == 0 or b.n == 0:
        return None
    pa, pb = a.positives / a.n, b.positives / b.n
    se = math.sqrt(pa * (1.0 - pa) / a.n + pb * (1.0 - pb) / b.n)
    d = pb - pa
    return Difference(d, d - z * se, d + z * se)


def _t_quantile(q: float, df: float) -> float:
    from scipy.special import stdtrit  # scipy comes with river; imported here, only when a report is made

    return float(stdtrit(df, q))


def _logloss(a: ArmSample, b: ArmSample, confidence: float) -> Difference | None:
    va, vb = a.loss_variance, b.loss_variance
    if va is None or vb is None:
        return None
    d = b.loss_mean - a.loss_mean
    sa, sb = va / a.n, vb / b.n
    se2 = sa + sb
    if se2 == 0.0:  # both arms constant: no spread to build an interval from
        return Difference(d, d, d)
    df = se2**2 / (sa**2 / (a.n - 1) + sb**2 / (b.n - 1))
    half = _t_quantile(0.5 + confidence / 2.0, df) * math.sqrt(se2)
    return Difference(d, d - half, d + half)


def compare_arms(a: ArmSample, b: ArmSample, *, confidence: float = 0.95) -> Comparison:
    """Differences ``b - a`` of label rate and mean log loss with ``confidence`` intervals."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    label_rate, logloss = _label_rate(a, b, z), _logloss(a, b, confidence)
    significant = any(diff is not None and diff.excludes_zero for diff in (label_rate, logloss))
    return Comparison(label_rate=label_rate, logloss=logloss, significant=significant, confidence=confidence)
