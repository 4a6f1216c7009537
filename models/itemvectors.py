"""Prod2Vec-style item vectors: a factorisation of which items users engage with near each other.

:func:`factorise` turns the co-occurrence counts (``models/cooccurrence.py``) of the ``max_items`` most engaged
items into unit vectors of ``dim`` numbers: the positive pointwise mutual information of every pair (how much
more often two items are near each other in users' sequences than their popularity says), its top
eigenvectors scaled by the root of their eigenvalues (Levy & Goldberg 2014: skip-gram with negative sampling
factorises a shifted PMI matrix; this is the cheap, deterministic form of it). Two items users browse together
get vectors pointing the same way, whether or not any single user saw both.

The result is deterministic: items in a fixed order, LAPACK's dense eigensolver on one thread, a fixed sign per
eigenvector, every number rounded to :data:`DECIMALS`, so a replay ships the same vectors bit for bit.

>>> from models.cooccurrence import CoOccurrence
>>> counts = CoOccurrence(window=3)
>>> for user in range(20):  # two groups of items, browsed by two groups of users
...     for item in ("a", "b", "c") if user % 2 else ("x", "y", "z"):
...         counts.observe(f"u{user}", item)
>>> vectors = factorise(counts, dim=2, max_items=10, version=1, trained_until=100.0)
>>> sorted(vectors.index), vectors.dim
(['a', 'b', 'c', 'x', 'y', 'z'], 2)
>>> round(vectors.similarity("a", "b"), 3), round(vectors.similarity("a", "x"), 3)
(1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from models.cooccurrence import CoOccurrence

__all__ = ["DECIMALS", "ItemVectors", "factorise"]

DECIMALS = 5
"""Vectors are rounded to this many decimals: far below what a ranking feature can tell apart, and what makes
them the same bytes whatever the BLAS summation order was."""


@dataclass(frozen=True)
class ItemVectors:
    """One trained version of the item vectors, as shipped to the workers in a signed snapshot."""

    version: int
    trained_until: float
    """Event time: trained only on events before it, so it may be used for requests at or after it."""
    ids: tuple[str, ...]
    matrix: np.ndarray
    """One unit row per item of :attr:`ids` (a zero row for an item the factorisation could not place)."""

    @cached_property
    def index(self) -> dict[str, int]:
        """Item id -> its row of :attr:`matrix` (built once per version, never pickled)."""
        return {item: row for row, item in enumerate(self.ids)}

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def similarity(self, a: str, b: str) -> float:
        """Cosine of two items' vectors (0 when either has none)."""
        index = self.index
        if a not in index or b not in index:
            return 0.0
        return float(self.matrix[index[a]] @ self.matrix[index[b]])

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state.pop("index", None)  # derived from ids
        return state


def _ppmi(counts: CoOccurrence, ids: list[str]) -> np.ndarray:
    index = {item: row for row, item in enumerate(ids)}
    m = np.zeros((len(ids), len(ids)))
    for (a, b), c in counts.pairs.items():
        i, j = index.get(a), index.get(b)
        if i is not None and j is not None:
            m[i, j] = m[j, i] = c
    total = m.sum()
    if total <= 0:
        return m
    rows = m.sum(axis=1)
    context = rows**0.75  # context smoothing: rare items' PMI is otherwise inflated
    context /= context.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(m * total / np.outer(rows, context * total))
    return np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)


def _top_eigen(m: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues of the symmetric ``m`` and their eigenvectors, largest first.

    LAPACK's dense solver rather than ARPACK's iterative one: two ARPACK calls on the same matrix (one with a
    repeated eigenvalue) gave different vectors; this one gives the same bytes every time.
    """
    # One BLAS thread: with OpenBLAS's default of one per core, a call took 1 s instead of 0.02 s on a busy
    # 2-core machine (its threads spin against the event loop), and threads may sum in another order.
    with threadpool_limits(limits=1):
        values, vectors = scipy.linalg.eigh(m, subset_by_index=[len(m) - k, len(m) - 1])
    return values[::-1], vectors[:, ::-1]


def factorise(counts: CoOccurrence, *, dim: int, max_items: int, version: int, trained_until: float,
              min_count: int = 2) -> ItemVectors:
    """Unit vectors for the ``max_items`` most engaged items seen at least ``min_count`` times."""
    ids = sorted(counts.top_items(max_items, min_count))
    k = min(dim, len(ids) - 1)
    if k < 1:
        return ItemVectors(version, trained_until, tuple(ids), np.zeros((len(ids), dim)))
    m = _ppmi(counts, ids)
    if not m.any():  # no pair of these items was ever near each other: nothing to place them by
        return ItemVectors(version, trained_until, tuple(ids), np.zeros((len(ids), dim)))
    values, vectors = _top_eigen(m, k)
    # A fixed sign per component; a weighted sum, so that no tie between equal entries decides it.
    signs = np.sign(np.arange(1, len(ids) + 1) @ vectors)
    vectors *= np.where(signs == 0, 1.0, signs)
    emb = vectors * np.sqrt(np.clip(values, 0.0, None))
    emb = np.pad(emb, ((0, 0), (0, dim - k)))
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    unit = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 1e-9)
    return ItemVectors(version, trained_until, tuple(ids), np.round(unit, DECIMALS) + 0.0)  # no -0.0

