"""What the worker sends the learner before a request's window closes (``STREAMSCORE_LEARN_FROM``).

``wait``: nothing; the learner learns each example when the label join closes its request's window. ``fnw``
(what the default, ``auto``, chooses on clicks): fake negative weighting (Ktena et al. 2019, ``docs/learning.md``).
When a request is scored, its candidates go to ``examples`` at once as *fake negatives*, in one record, each with
the vector just logged (the one that was served, built from the state before the request: nothing after it can
leak in). When a label comes within the window, the candidate goes out again as a *positive*, with the same
logged vector. The learner weights them so that what it learns is unbiased (``models/fnw.py``). The
window-closed examples still go out, marked :data:`~streams.core.records.LEARNED_EARLY`: the metrics are still
the served scores against the final labels, counted once, and the learner does not learn them a second time. The
request remembers that its early records went out (:data:`~streams.core.records.EARLY_SENT`), so a request
waiting while the setting changes, or evicted before its fake negatives went out, is still learned once.

The records go where the examples go, from the worker that owns the user, in the order the worker decided
them: a request's fake negatives right after its feature-log record, a positive right after its label. So the
learner's order is the event order of each partition, in a replay as live, and a redelivery repeats records
the learner skips by the natural key of each candidate, ``(request_id, item_id, kind)``.

>>> from streams.core.statecache import PendingCache
>>> pending = PendingCache(lambda rid: None)
>>> pending.put("r1", {"user_id": "u", "ts": 100.0, "schema": "fs", "items": [["a", {"f": 1.0}, {}],
...                                                                        ["b", {"f": 2.0}, {}]]})
>>> early = EarlyFeed(True)
>>> [(r["kind"], r["items"], r["y"], r["at"]) for r in early.at_score("r1", pending)]
[('fake_negative', [{'item_id': 'a', 'x': {'f': 1.0}}, {'item_id': 'b', 'x': {'f': 2.0}}], 0, 100.0)]
>>> [(r["kind"], r["item_id"], r["y"], r["at"]) for r in early.at_label("r1", pending, "b", 130.0)]
[('positive', 'b', 1, 130.0)]
>>> pending.get("r1")["early"]  # kept with the request: its closed examples are marked learned
True
>>> EarlyFeed(False).at_score("r2", pending)
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from streams.core.records import EARLY_SENT, early_positive_record, fake_negatives_record

__all__ = ["AUTO", "FNW", "LEARN_FROM", "WAIT", "EarlyFeed", "resolve_learn_from"]

AUTO, WAIT, FNW = "auto", "wait", "fnw"
LEARN_FROM = (AUTO, WAIT, FNW)
"""The values of ``STREAMSCORE_LEARN_FROM``."""


def resolve_learn_from(learn_from: str, label: str) -> str:
    """``wait`` or ``fnw``: ``auto`` chooses by the label, as measured in replays (``docs/learning.md``).

    Clicks come within minutes of their request but their window is an hour: waiting for it, the models learn
    nothing in a replay's first hour, and fnw won on every click log (simulators +0.020 and +0.016 AUC, trivago
    +0.004). Conversions come hours late in a day's window: fake negatives then stand for most of a day, and fnw
    lost on talkingdata (0.941 against 0.949).

    >>> [resolve_learn_from(setting, label) for setting, label in [("auto", "click"), ("auto", "conversion"),
    ...                                                            ("wait", "click"), ("fnw", "conversion")]]
    ['fnw', 'wait', 'wait', 'fnw']
    """
    if learn_from != AUTO:
        return learn_from
    return FNW if label == "click" else WAIT


class _Pending(Protocol):
    def get(self, request_id: str) -> dict[str, Any] | None: ...

    def put(self, request_id: str, entry: dict[str, Any] | None) -> None: ...


class _LearnFrom(Protocol):
    @property
    def learn_from(self) -> str: ...

    @property
    def label(self) -> str: ...


@dataclass(frozen=True)
class EarlyFeed:
    enabled: bool
    """``learn_from`` is (or ``auto`` chose) ``fnw``: emit early records; otherwise every method is a no-op
    (``wait``, bit for bit)."""

    @classmethod
    def of(cls, settings: _LearnFrom) -> EarlyFeed:
        return cls(resolve_learn_from(settings.learn_from, settings.label) == FNW)

    def at_score(self, request_id: str, pending: _Pending) -> list[dict[str, Any]]:
        """The fake negatives of a request just scored and waiting (``pending`` holds its vectors), one record,
        and the request marked :data:`~streams.core.records.EARLY_SENT`: its closed examples say so."""
        entry = pending.get(request_id) if self.enabled else None
        if entry is None:
            return []  # off, or evicted at once (max_pending): then its closed examples are learned as under wait
        pending.put(request_id, {**entry, EARLY_SENT: True})
        return [fake_negatives_record(request_id, entry)]

    def at_label(self, request_id: str, pending: _Pending, item_id: str | None, ts: float) -> list[dict[str, Any]]:
        """The positive of a candidate whose label (at event time ``ts``) the label join just accepted, if its
        request's fake negatives went out (a request scored under ``wait`` is learned when it closes, whatever
        the setting is now)."""
        entry = pending.get(request_id)
        if entry is None or not entry.get(EARLY_SENT):
            return []
        index = next((i for i, item in enumerate(entry["items"]) if item[0] == item_id), None)
        return [] if index is None else [early_positive_record(request_id, entry, index, ts)]
