"""The item-vector parity check: were the logged ``xvec_`` features computed from vectors trained only on
events before the request, and from the user's history just before it?

For every logged request it takes the version the feature log names (``item_vectors``: the event time the
version is trained until), trains that version again from scratch, from the events of the input before the
first one at or after that time (the trainer's rule, ``streams/core/vectortrainer.py``), rebuilds the user's
item history from the user's earlier events only, and recomputes the features. Vectors trained on a single
later event, a version used before its time, or a history that includes the request's own future give other
numbers and are reported. A request logged with version 0 must have no ``xvec_`` features.

Assumes a stream whose times the event clock accepts (as the simulator's): refused events are not modelled.
It retrains once per version used: for tests and audits, not for the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from features.base import Vector
from features.builtin import ItemInteractions
from features.featureset import FeatureSet
from features.itemvectors import VectorSignals, is_vector_side
from features.parity import Mismatch, point_in_time_states
from models.cooccurrence import CoOccurrence
from models.itemvectors import ItemVectors, factorise
from streams.events import Click, Conversion, Event, Interaction, InvalidEvent, decode_event
from streams.settings import Settings

__all__ = ["vector_mismatches"]


def _vectors_until(events: Sequence[Event], until: float, settings: Settings) -> ItemVectors:
    counts = CoOccurrence(window=settings.item_vectors_window)
    for event in events:
        if event.ts >= until:
            break  # the first event at or after the boundary: the version was made before it counted
        item_id = event.item_id if isinstance(event, Interaction | Click | Conversion) else None
        if item_id:
            counts.observe(event.user_id, item_id)
    return factorise(counts, dim=settings.item_vectors_dim, max_items=settings.item_vectors_items,
                     version=int(until), trained_until=until)


def _close(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], abs_tol=2e-6) for k in a)


def vector_mismatches(events: Iterable[dict[str, Any] | bytes], feature_log: Iterable[dict[str, Any]],
                      settings: Settings) -> list[Mismatch]:
    """Every (request, candidate) whose logged ``xvec_`` features differ from the recomputed ones."""
    raws = [raw if isinstance(raw, bytes) else orjson.dumps(raw) for raw in events]
    decoded: list[Event] = []
    for raw in raws:
        try:
            decoded.append(decode_event(raw))
        except InvalidEvent:
            continue
    history_features = FeatureSet([ItemInteractions()], settings.user_ttl)
    histories = {request.request_id: state.get(ItemInteractions.name)
                 for request, state in point_in_time_states(raws, history_features)}
    trained: dict[int, ItemVectors] = {}
    signals = VectorSignals()
    mismatches = []
    for record in feature_log:
        version = record.get("item_vectors", 0)
        if version and version > record["ts"]:
            mismatches.append(Mismatch(record["request_id"], "*", {"item_vectors": float(version)},
                                       {"item_vectors (at most the request's ts)": float(record["ts"])}))
            continue
        if version and version not in trained:
            trained[version] = _vectors_until(decoded, float(version), settings)
        item_ids = [f["item_id"] for f in record["features"]]
        again = signals.values(trained.get(version), histories.get(record["request_id"]), item_ids)
        for logged, expected in zip(record["features"], again, strict=True):
            x: Vector = {k: v for k, v in logged["x"].items() if is_vector_side(k)}
            if not _close(x, expected):
                mismatches.append(Mismatch(record["request_id"], logged["item_id"], x, expected))
    return mismatches
