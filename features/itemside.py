"""The item-side features of a candidate, read from the shared :class:`~features.itemstats.ItemStats`.

Every name starts with :data:`PREFIX` (``xitem_``: "across users"), which is how the per-user parity check
(``features/parity.py``) tells them from the features it rebuilds, and how the item parity check
(``features/itemparity.py``) finds them. For the candidate item itself:

- ``xitem_imps``, ``xitem_labels``: log(1 + decayed impressions / labels) of the item (popularity, outcomes);
- ``xitem_rate``: its smoothed label rate, ``(labels + w * global) / (impressions + w)``, where ``global`` is the
  rate of :data:`~features.itemstats.ALL`, itself smoothed towards a small prior;
- ``xitem_logit``: the log-odds of ``xitem_rate`` (what a linear model adds up);

and for each categorical attribute of the candidate or its context (``cand_category``, ``ctx_channel``, ...),
``xitem_logit_<attribute>``: the log-odds of the smoothed rate of the candidate's value of it.

>>> from features.itemstats import ItemStats, impression_delta, label_delta
>>> stats = ItemStats(lag=0.0, half_life=1e9, max_keys=100)
>>> for i in range(10):
...     stats.apply(impression_delta(f"r{i}", 0.0, [["item=a", "ctx_os=1", "__all__"]], 0.0))
>>> stats.apply(label_delta("c", 0.0, ["item=a", "ctx_os=1", "__all__"], 0.0)); stats.advance(1.0)
>>> x = ItemSignals(prior_weight=10.0).values(stats, ["item=a", "ctx_os=1"], 1.0)
>>> {k: round(v, 3) for k, v in x.items()}  # doctest: +NORMALIZE_WHITESPACE
{'xitem_imps': 2.398, 'xitem_labels': 0.693, 'xitem_rate': 0.059, 'xitem_logit': -2.768,
 'xitem_logit_ctx_os': -2.768}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from features.base import Vector
from features.itemstats import ALL, ItemStats

__all__ = ["PREFIX", "ItemSignals", "is_item_side"]

PREFIX = "xitem_"
PRIOR_RATE, PRIOR_WEIGHT_GLOBAL = 0.01, 100.0
"""The global rate's own prior: 1 % over 100 impressions, so the first requests are not scored at 0 or 1."""


def is_item_side(name: str) -> bool:
    return name.startswith(PREFIX)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class ItemSignals:
    prior_weight: float = 20.0
    """Pseudo-impressions at the global rate in each key's smoothed rate."""
    version: int = 1

    def params(self) -> dict[str, object]:
        """Part of the feature-set fingerprint (the feature log's ``schema``)."""
        return {"prior_weight": self.prior_weight, "version": self.version}

    def values(self, stats: ItemStats, keys: Sequence[str], ts: float) -> Vector:
        """The item-side features of a candidate whose keys are ``keys`` (the item first), as of ``ts``."""
        return self.request_values(stats, [keys], ts)[0]

    def request_values(self, stats: ItemStats, keys_per_candidate: Sequence[Sequence[str]], ts: float) -> list[Vector]:
        """:meth:`values` of every candidate of a request: the global rate once, each shared key (the context's)
        once; the same floats."""
        all_imps, all_labels = stats.lookup(ALL, ts)
        prior = (all_labels + PRIOR_WEIGHT_GLOBAL * PRIOR_RATE) / (all_imps + PRIOR_WEIGHT_GLOBAL)
        w = self.prior_weight
        logits: dict[str, float] = {}
        out = []
        for keys in keys_per_candidate:
            imps, labels = stats.lookup(keys[0], ts)
            rate = (labels + w * prior) / (imps + w)
            x: Vector = {"xitem_imps": math.log1p(imps), "xitem_labels": math.log1p(labels), "xitem_rate": rate,
                         "xitem_logit": _logit(rate)}
            for key in keys[1:]:
                logit = logits.get(key)
                if logit is None:
                    imps, labels = stats.lookup(key, ts)
                    logit = logits[key] = _logit((labels + w * prior) / (imps + w))
                x[_name(key)] = logit
            out.append(x)
        return out


@lru_cache(maxsize=4096)
def _name(key: str) -> str:
    """``xitem_logit_<attribute>`` of a key ``<attribute>=<value>``."""
    return f"{PREFIX}logit_{key.split('=', 1)[0]}"
