"""Progressive (predict-then-learn) classification metrics, per model and experiment arm.

Each example is scored before the model learns from it, so ``(y, p)`` pairs measure the model on data it had
not seen. :class:`ProgressiveMetrics` summarises the pairs since the start (``cumulative``) and the last
``window`` pairs (``recent``); :class:`MetricsBook` keeps one per ``(model, arm)`` and skips redeliveries.

>>> metrics = ProgressiveMetrics(window=2)
>>> for y, p in [(False, 0.2), (True, 0.8), (True, 0.4), (False, 0.6)]:
...     metrics.update_one(y, p)
>>> report = metrics.report()
>>> report["cumulative"]["auc"], report["recent"]["auc"]  # 3 of 4 pairs ranked right; the last 2 reversed
(0.75, 0.0)
>>> report["recent"]["n"], report["recent"]["label_rate"], report["recent"]["mean_score"]
(2, 0.5, 0.5)
>>> round(report["cumulative"]["logloss"], 6)  # mean of -log(0.8), -log(0.8), -log(0.4), -log(0.4)
0.569717

"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from streams.core.seen import SeenKeys

__all__ = ["ALL_ARMS", "EPS", "MetricsBook", "ProgressiveMetrics", "logloss", "mean_logloss"]

EPS = 1e-15
"""Scores are clipped to ``[EPS, 1 - EPS]`` for the log loss."""

ALL_ARMS = "*"
"""The arm name under which :meth:`MetricsBook.report` puts a model's metrics over all its arms."""

_LOGIT_RANGE = math.log((1.0 - 1e-8) / 1e-8)  # bins cover logit(p) in [-18.42, 18.42]; beyond: the end bins


def logloss(y: bool | int, p: float) -> float:
    """The log loss of one score ``p`` for label ``y``, ``p`` clipped to ``[EPS, 1 - EPS]``: the one definition
    the metrics, the learner's experiment and the simulator's oracle share.

    >>> round(logloss(True, 0.5), 6), round(logloss(False, 0.9), 6), logloss(True, 0.0) < 35
    (0.693147, 2.302585, True)
    """
    p = min(max(p, EPS), 1.0 - EPS)
    return -math.log(p) if y else -math.log(1.0 - p)


def mean_logloss(probs: Sequence[float], labels: Sequence[int]) -> float:
    """Mean :func:`logloss` of ``labels`` under ``probs`` (NaN when there are none).

    >>> round(mean_logloss([0.5, 0.9], [1, 0]), 6)
    1.497866
    """
    total = 0.0
    for p, y in zip(probs, labels, strict=True):
        total += logloss(y, p)
    return total / len(probs) if probs else math.nan


def _auc(groups: Iterable[tuple[int, int]], positives: int, negatives: int) -> float | None:
    """ROC AUC from ``(positives, negatives)`` counts per score group, in increasing score order.

    Pairs within a group count 0.5, as ties.
    """
    if positives == 0 or negatives == 0:
        return None
    wins = 0.0
    negatives_below = 0
    for pos, neg in groups:
        wins += pos * (negatives_below + 0.5 * neg)
        negatives_below += neg
    return wins / (positives * negatives)


def exact_auc(scores: Sequence[float], labels: Sequence[bool | int]) -> float | None:
    """ROC AUC of ``scores`` against ``labels``, ties counted 0.5; ``None`` without both classes.

    >>> exact_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    >>> exact_auc([0.5, 0.5, 0.5], [0, 1, 1])
    0.5
    """
    pairs = sorted(zip(scores, labels, strict=True), key=lambda pair: pair[0])
    groups: list[tuple[int, int]] = []
    i, n = 0, len(pairs)
    while i < n:
        j, pos = i, 0
        while j < n and pairs[j][0] == pairs[i][0]:
            pos += bool(pairs[j][1])
            j += 1
        groups.append((pos, j - i - pos))
        i = j
    positives = sum(pos for pos, _ in groups)
    return _auc(groups, positives, n - positives)


def _summary(n: int, positives: int, loss_sum: float, score_sum: float) -> dict[str, Any]:
    return {
        "n": n,
        "logloss": loss_sum / n if n else None,
        "calibration": score_sum / positives if positives else None,  # mean p / mean y
        "label_rate": positives / n if n else None,
        "mean_score": score_sum / n if n else None,
    }


class ProgressiveMetrics:
    """Log loss, ROC AUC, calibration, label rate and mean score over all pairs and over the last ``window``.

    ``report()`` returns ``{"cumulative": {...}, "recent": {...}}``, each with ``n``, ``logloss``, ``auc``,
    ``auc_max_error``, ``calibration`` (mean score / label rate), ``label_rate`` and ``mean_score``; a value
    that is undefined (no data, one class only for the AUC, no positives for the calibration) is ``None``.

    The **recent** AUC is exact: the window is sorted at report time and ties count 0.5.

    The **cumulative** AUC uses bounded memory: scores fall into ``bins`` bins of equal width in logit space
    (so small click rates get as much resolution as rates near 0.5), and each bin keeps its counts of
    positives and negatives and its smallest and largest score. Pairs in different bins are ranked exactly.
    Pairs within one bin count 0.5; that is exact when the bin holds a single distinct score (so discrete
    scores, such as a baseline's, give the exact AUC) and otherwise off by at most 0.5 per pair. The report
    gives the resulting bound, ``auc_max_error = 0.5 * sum(pos_b * neg_b) / (P * N)`` over the bins holding
    more than one distinct score: the exact AUC lies within ``auc ± auc_max_error``. With the default 16384
    bins a bin spans 0.00225 in logit, i.e. scores within about 0.2 % of each other in odds. Only occupied
    bins are stored, so memory is at most ``bins`` small cells (about 2.5 MB), usually far less.

    >>> metrics = ProgressiveMetrics(window=100, bins=4)
    >>> for y, p in [(True, 0.9), (False, 0.2), (True, 0.3), (False, 0.25)]:
    ...     metrics.update_one(y, p)
    >>> cumulative, recent = metrics.report()["cumulative"], metrics.report()["recent"]
    >>> recent["auc"], recent["auc_max_error"]
    (1.0, 0.0)
    >>> cumulative["auc"], cumulative["auc_max_error"]  # 0.2, 0.25 and 0.3 share a bin: 2 pairs count 0.5
    (0.75, 0.25)
    """

    def __init__(self, window: int = 1000, bins: int = 16384) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be an int >= 1, got {bins!r}")
        self.window = window
        self.bins = bins
        self._recent: deque[tuple[bool, float]] = deque(maxlen=window)
        self._n = 0
        self._positives = 0
        self._loss_sum = 0.0
        self._score_sum = 0.0
        # bin -> [positives, negatives, lowest score, highest score]
        self._hist: dict[int, list[Any]] = {}

    @property
    def n(self) -> int:
        """Number of pairs seen since the start."""
        return self._n

    def _bin(self, p: float) -> int:
        p = min(max(p, EPS), 1.0 - EPS)
        z = math.log(p / (1.0 - p))
        b = math.floor((z + _LOGIT_RANGE) * self.bins / (2.0 * _LOGIT_RANGE))
        return min(max(b, 0), self.bins - 1)

    def update_one(self, y: bool, p: float) -> None:
        """Add one pair: ``y`` the label, ``p`` the score the model gave *before* learning from it."""
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(f"the score must be a probability in [0, 1], got {p!r}")
        y, p = bool(y), float(p)
        self._recent.append((y, p))
        self._n += 1
        self._positives += y
        self._loss_sum += logloss(y, p)
        self._score_sum += p
        cell = self._hist.get(b := self._bin(p))
        if cell is None:
            self._hist[b] = [int(y), int(not y), p, p]
        else:
            cell[0 if y else 1] += 1
            cell[2] = min(cell[2], p)
            cell[3] = max(cell[3], p)

    def _cumulative(self) -> dict[str, Any]:
        out = _summary(self._n, self._positives, self._loss_sum, self._score_sum)
        negatives = self._n - self._positives
        cells = [self._hist[b] for b in sorted(self._hist)]
        out["auc"] = _auc(((c[0], c[1]) for c in cells), self._positives, negatives)
        if out["auc"] is None:
            out["auc_max_error"] = None
        else:
            mixed = sum(c[0] * c[1] for c in cells if c[2] != c[3])
            out["auc_max_error"] = 0.5 * mixed / (self._positives * negatives)
        return _order(out)

    def _window(self) -> dict[str, Any]:
        pairs = list(self._recent)
        positives = sum(y for y, _ in pairs)
        loss_sum = math.fsum(logloss(y, p) for y, p in pairs)
        out = _summary(len(pairs), positives, loss_sum, math.fsum(p for _, p in pairs))
        out["auc"] = exact_auc([p for _, p in pairs], [y for y, _ in pairs])
        out["auc_max_error"] = None if out["auc"] is None else 0.0
        return _order(out)

    def report(self) -> dict[str, dict[str, Any]]:
        return {"cumulative": self._cumulative(), "recent": self._window()}


_KEYS = ("n", "logloss", "auc", "auc_max_error", "calibration", "label_rate", "mean_score")


def _order(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in _KEYS}


class MetricsBook:
    """One :class:`ProgressiveMetrics` per ``(model, arm)``, plus one per model over all its arms.

    ``update_one`` skips an example whose ``key`` it has already counted **for that model**, so a redelivery
    after a crash changes nothing, while one example scored by two models (production and baseline) counts
    for both. ``duplicates`` counts the skipped updates.

    The memory of seen keys is bounded: a FIFO of the last ``max_seen`` ``(model, key)`` pairs. That is safe
    because Kafka redelivers what followed the last committed offset, i.e. recent examples; a key would only
    be counted twice if more than ``max_seen`` updates came between its first delivery and its redelivery,
    far more than any commit interval. Each remembered key costs roughly 200-300 bytes for a
    ``(request_id, item_id)`` key (the strings, two tuples, a set slot and a deque slot), so the default of a
    million keys is a few hundred MB at most; size it from the commit interval times the number of models.

    >>> book = MetricsBook(window=10)
    >>> book.update_one(("r1", "a"), "lr", "A", True, 0.7)
    True
    >>> book.update_one(("r1", "a"), "ctr", "A", True, 0.1)  # same example, another model: counted
    True
    >>> book.update_one(("r1", "a"), "lr", "A", True, 0.7)  # redelivered: skipped
    False
    >>> book.update_one(("r2", "b"), "lr", "B", False, 0.2)
    True
    >>> book.duplicates
    1
    >>> report = book.report()
    >>> sorted(report), sorted(report["lr"])
    (['ctr', 'lr'], ['*', 'A', 'B'])
    >>> report["lr"]["*"]["recent"]["auc"], report["lr"]["A"]["recent"]["n"]
    (1.0, 1)
    """

    def __init__(self, window: int = 1000, max_seen: int = 1_000_000, bins: int = 16384) -> None:
        ProgressiveMetrics(window=window, bins=bins)  # validate now rather than at the first update
        self.window = window
        self.bins = bins
        self.duplicates = 0
        """Updates skipped because their ``(model, key)`` was already counted."""
        self._seen: SeenKeys[tuple[str, Hashable]] = SeenKeys(max_seen)
        self._metrics: dict[str, dict[str, ProgressiveMetrics]] = {}

    @property
    def max_seen(self) -> int:
        """How many ``(model, key)`` pairs are remembered; may be raised (a learner restored with more models)."""
        return self._seen.capacity

    @max_seen.setter
    def max_seen(self, value: int) -> None:
        self._seen.capacity = value

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_seen_order" in state:  # a checkpoint from before SeenKeys: a set beside its FIFO
            state["_seen"] = SeenKeys(state.pop("max_seen"))
            for seen in state.pop("_seen_order"):
                state["_seen"].add(seen)
        vars(self).update(state)

    def _get(self, model: str, arm: str) -> ProgressiveMetrics:
        arms = self._metrics.setdefault(model, {})
        if arm not in arms:
            arms[arm] = ProgressiveMetrics(window=self.window, bins=self.bins)
        return arms[arm]

    def update_one(self, key: Hashable, model: str, arm: str, y: bool, p: float) -> bool:
        """Count ``(y, p)`` for ``model`` in ``arm`` unless ``key`` was already counted for ``model``.

        Returns whether it was counted.
        """
        if arm == ALL_ARMS:
            raise ValueError(f"{ALL_ARMS!r} is reserved for the metrics over all arms")
        seen = (model, key)
        if seen in self._seen:
            self.duplicates += 1
            return False
        arm_metrics, all_metrics = self._get(model, arm), self._get(model, ALL_ARMS)
        arm_metrics.update_one(y, p)  # raises on a bad score before the key is remembered
        all_metrics.update_one(y, p)
        self._seen.add(seen)
        return True

    def report(self) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
        """``{model: {arm: report, ..., "*": report over all arms}}``, models and arms sorted by name."""
        return {
            model: {arm: arms[arm].report() for arm in sorted(arms)}
            for model, arms in sorted(self._metrics.items())
        }
