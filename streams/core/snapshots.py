"""The model hot-swap: one record of the ``model-snapshots`` topic applied to the scorer, with no broker in sight.

:class:`SnapshotFeed` applies one record: it verifies the signature (:func:`~models.snapshots.load_snapshot`)
and swaps the model into the scorer when the version is newer than the one served. The worker feeds it every
record of the topic (``streams/worker/feeds.py``); the replay driver feeds it the learner's snapshots.

>>> from models.registry import build
>>> from models.scorer import Scorer
>>> from models.snapshots import dump_snapshot
>>> from streams.core.counters import Counters
>>> key, counters = b"k", Counters()
>>> feed = SnapshotFeed(Scorer.fresh(["prod"]), key, counters)
>>> blob = dump_snapshot(build("prod"), name="prod", version=2, key=key)
>>> feed.apply_one(b"prod", blob), feed.apply_one(b"prod", blob), feed.scorer.versions
('swapped', 'stale', {'prod': 2})
>>> feed.apply_one(b"__learner__", b"learner state"), feed.apply_one(b"prod", blob[:-1] + b"!")
('ignored', 'refused')
>>> counters.snapshot()
{'snapshots_ignored': 1, 'snapshots_refused': 1, 'snapshots_stale': 1, 'snapshots_swapped': 1}
"""

from __future__ import annotations

import logging
from typing import Literal

from features.itemvectors import ItemVectorTable
from models.itemvectors import ItemVectors
from models.scorer import LiveModel, Scorer
from models.snapshots import SnapshotRejected, load_snapshot
from streams.core.counters import Counters
from streams.core.vectortrainer import ITEM_VECTORS

__all__ = ["Outcome", "SnapshotFeed"]

log = logging.getLogger(__name__)

Outcome = Literal["swapped", "stale", "refused", "ignored"]


class SnapshotFeed:
    """Applies snapshot records to a :class:`~models.scorer.Scorer`; counts each outcome in ``counters``.

    Counters: ``snapshots_swapped``, ``snapshots_stale`` (a version not above the one served, e.g. re-read
    from the start of the topic), ``snapshots_refused`` (not verifiable or not loadable: logged at WARNING
    with the reason, and the current model keeps serving) and ``snapshots_ignored`` (a record for something
    that is not a live model, such as the learner's own ``__learner__`` state).
    """

    def __init__(self, scorer: Scorer, key: bytes, counters: Counters | None = None,
                 item_vectors: ItemVectorTable | None = None) -> None:
        if not key:
            raise ValueError("the snapshot key is empty; set STREAMSCORE_SNAPSHOT_KEY")
        self.scorer = scorer
        self.item_vectors = item_vectors
        """Where the ``item_vectors`` records go (``features/itemvectors.py``); ``None``: they are ignored."""
        self.key = bytes(key)
        self.counters = counters if counters is not None else Counters()

    def apply_one(self, name: bytes | str | None, blob: bytes) -> Outcome:
        """Apply the record ``name`` (the record key: a model name) -> ``blob`` (signed snapshot bytes)."""
        outcome = self._apply(name, blob)
        self.counters.inc(f"snapshots_{outcome}")
        return outcome

    def _apply(self, name: bytes | str | None, blob: bytes) -> Outcome:
        if isinstance(name, bytes | bytearray):
            name = bytes(name).decode("utf-8", "replace")
        table = self.item_vectors if name == ITEM_VECTORS else None
        # Checked before verifying: a record of another kind (the learner's state) need not be read at all.
        if name is None or (table is None and name not in self.scorer.models):
            return "ignored"
        current = table.version if table is not None else self.scorer.models[name].version
        try:
            snapshot = load_snapshot(blob, key=self.key)
        except SnapshotRejected as exc:
            return self._refuse(name, exc.reason, str(exc), current)
        except Exception as exc:  # signed, yet unloadable (e.g. pickled by code with classes this one lacks)
            return self._refuse(name, "unloadable", f"{type(exc).__name__}: {exc}", current)
        # The record key is not signed; the header is. A genuine snapshot of another model under this key
        # (replayed or mislabelled) must not replace this model.
        if snapshot.name != name:
            return self._refuse(name, "name mismatch", f"the signed snapshot is of {snapshot.name!r}", current)
        if table is not None:
            return self._take_vectors(snapshot.model, table, current)
        if not callable(getattr(snapshot.model, "predict_proba_one", None)):
            return self._refuse(name, "not a classifier", f"the snapshot holds a {type(snapshot.model).__name__}",
                                current)
        if not self.scorer.swap(LiveModel(name, snapshot.version, snapshot.model)):
            log.debug("snapshot %s v%s is not newer than v%s: kept the current model", name, snapshot.version, current)
            return "stale"
        log.info("now serving %s version %s", name, snapshot.version)
        return "swapped"

    def _take_vectors(self, vectors: object, table: ItemVectorTable, current: int) -> Outcome:
        if not isinstance(vectors, ItemVectors):
            return self._refuse(ITEM_VECTORS, "not item vectors", f"the snapshot holds a {type(vectors).__name__}",
                                current)
        if not table.offer(vectors):
            return "stale"
        log.info("item vectors now at version %s (%d items)", vectors.version, len(vectors.ids))
        return "swapped"

    def _refuse(self, name: str, reason: str, detail: str, current: int) -> Outcome:
        log.warning("refused a snapshot of %s (%s): %s; still serving version %s", name, reason, detail, current)
        return "refused"
        current = self.scorer.models[name].version
        log.warning("refused a snapshot of %s (%s): %s; still serving version %s", name, reason, detail, current)
        return "refused"
