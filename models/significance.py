"""Is arm B different from arm A? Differences with confidence intervals, for ``streamscore experiment``.

Users, not examples, are assigned to arms, and one user's examples are correlated (an active user has many,
with a rate of their own). An interval that treats examples as independent is too narrow, and an A/A test
then "finds" differences (measured on the simulator: label rates of two identical arms 'significantly'
apart). So each arm keeps its sums in ``buckets`` buckets of users (a stable hash of the user id): buckets
are independent of each other, and the variance of a ratio metric (label rate = positives / examples, mean
log loss = total loss / examples) comes from the spread of the buckets, by the delta method:

    r = sum(Y_b) / sum(N_b),    var(r) = B / (B - 1) * sum((Y_b - r N_b)^2) / sum(N_b)^2

The difference of two arms is ``b - a`` with a Welch t interval (each arm has B - 1 degrees of freedom).
``significant`` when any interval excludes 0; two intervals at 95 % each make a false alarm more likely
than 5 % (up to about 10 %): read them as a screen, not a verdict.

>>> import random
>>> rng = random.Random(1)
>>> a, b = ArmSample(), ArmSample()
>>> for i in range(4000):
...     y = rng.random() < 0.10
...     a.update_one(y, 2.3 if y else 0.1, unit=f"a{i % 400}")
...     y = rng.random() < 0.20
...     b.update_one(y, 1.6 if y else 0.2, unit=f"b{i % 400}")
>>> result = compare_arms(a, b)
>>> round(result.label_rate.estimate, 3), result.label_rate.excludes_zero, result.significant
(0.11, True, True)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["ArmSample", "Comparison", "Difference", "compare_arms"]

BUCKETS = 64


def _bucket(unit: str, buckets: int) -> int:
    return int.from_bytes(hashlib.blake2b(unit.encode(), digest_size=8).digest(), "big") % buckets


@dataclass(frozen=True)
class RatioEstimate:
    value: float
    variance: float
    df: int


@dataclass
class ArmSample:
    """Running sums of one arm, per bucket of users: examples, positives, total log loss.

    >>> sample = ArmSample(buckets=4)
    >>> for y, loss, user in [(True, 1.0, "u1"), (False, 2.0, "u2"), (False, 3.0, "u1")]:
    ...     sample.update_one(y, loss, unit=user)
    >>> sample.n, sample.positives, round(sample.label_rate, 4), sample.loss_mean
    (3, 1, 0.3333, 2.0)
    """

    buckets: int = BUCKETS
    n_b: list[int] = field(default_factory=list)
    positives_b: list[int] = field(default_factory=list)
    loss_b: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.buckets < 2:
            raise ValueError(f"buckets must be >= 2, got {self.buckets}")
        if not self.n_b:
            self.n_b, self.positives_b, self.loss_b = [0] * self.buckets, [0] * self.buckets, [0.0] * self.buckets

    def update_one(self, y: bool, loss: float, unit: str) -> None:
        """Add one example of randomisation ``unit`` (the user id)."""
        if not (math.isfinite(loss) and loss >= 0.0):
            raise ValueError(f"a log loss must be a finite number >= 0, got {loss!r}")
        b = _bucket(unit, self.buckets)
        self.n_b[b] += 1
        self.positives_b[b] += bool(y)
        self.loss_b[b] += loss

    @classmethod
    def from_lists(cls, labels: Iterable[bool], losses: Iterable[float],
                   units: Iterable[str] | None = None) -> ArmSample:
        """Summarise paired lists of labels and log losses; without ``units`` every example is its own unit."""
        labels, losses = list(labels), list(losses)
        if len(labels) != len(losses):
            raise ValueError(f"{len(labels)} labels but {len(losses)} losses")
        unit_list = [str(i) for i in range(len(labels))] if units is None else list(units)
        sample = cls()
        for y, loss, unit in zip(labels, losses, unit_list, strict=True):
            sample.update_one(y, loss, unit)
        return sample

    @property
    def n(self) -> int:
        return sum(self.n_b)

    @property
    def positives(self) -> int:
        return sum(self.positives_b)

    @property
    def label_rate(self) -> float | None:
        return self.positives / self.n if self.n else None

    @property
    def loss_mean(self) -> float:
        return math.fsum(self.loss_b) / self.n if self.n else 0.0

    def ratio(self, metric: str) -> RatioEstimate | None:
        """``label_rate`` or ``logloss`` with its bucket (delta-method) variance; ``None`` below 2 buckets."""
        numerators = [float(p) for p in self.positives_b] if metric == "label_rate" else self.loss_b
        used = [(y, n) for y, n in zip(numerators, self.n_b, strict=True) if n]
        if len(used) < 2:
            return None
        total_n = sum(n for _, n in used)
        r = math.fsum(y for y, _ in used) / total_n
        spread = math.fsum((y - r * n) ** 2 for y, n in used)
        return RatioEstimate(r, len(used) / (len(used) - 1) * spread / total_n**2, len(used) - 1)

    def interval(self, metric: str, confidence: float = 0.95) -> tuple[float, float] | None:
        est = self.ratio(metric)
        if est is None:
            return None
        half = _t_quantile(0.5 + confidence / 2.0, est.df) * math.sqrt(est.variance)
        return est.value - half, est.value + half


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
    """B's label rate minus A's; ``None`` if an arm has examples in fewer than 2 buckets."""
    logloss: Difference | None
    """B's mean log loss minus A's; ``None`` likewise."""
    significant: bool
    """Whether any of the intervals excludes 0."""
    confidence: float


def _t_quantile(q: float, df: float) -> float:
    from scipy.special import stdtrit  # scipy comes with river; imported here, only when a report is made

    return float(stdtrit(df, q))


def _difference(a: ArmSample, b: ArmSample, metric: str, confidence: float) -> Difference | None:
    ea, eb = a.ratio(metric), b.ratio(metric)
    if ea is None or eb is None:
        return None
    d = eb.value - ea.value
    se2 = ea.variance + eb.variance
    if se2 == 0.0:  # no spread between buckets to build an interval from
        return Difference(d, d, d)
    df = se2**2 / (ea.variance**2 / ea.df + eb.variance**2 / eb.df)
    half = _t_quantile(0.5 + confidence / 2.0, df) * math.sqrt(se2)
    return Difference(d, d - half, d + half)


def compare_arms(a: ArmSample, b: ArmSample, *, confidence: float = 0.95) -> Comparison:
    """Differences ``b - a`` of label rate and mean log loss with ``confidence`` intervals."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    label_rate = _difference(a, b, "label_rate", confidence)
    logloss = _difference(a, b, "logloss", confidence)
    significant = any(diff is not None and diff.excludes_zero for diff in (label_rate, logloss))
    return Comparison(label_rate=label_rate, logloss=logloss, significant=significant, confidence=confidence)
