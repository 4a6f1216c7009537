"""The topics and the shape of every record the processor writes: one home, so a new output topic or a new
field is one edit here (plus its spec in ``topics.py`` and the line of the processor that emits it).

Logical names: the real topic name is the settings' prefix + the logical name unless overridden
(``Settings.topic``). Records are JSON objects; their key order is part of the golden outputs
(``tests/golden/``), so it is fixed here.

>>> import orjson
>>> from streams.core.deadletter import Source
>>> out = dead_letter_output(b"oops", "not valid JSON", "not_json", Source("events", 0, 7, b"u1"))
>>> out.topic, out.key, orjson.loads(out.value)["code"]
('dead-letter', None, 'not_json')
>>> [topic for topic in TOPIC_NAMES if topic in USER_KEYED]
['events', 'scores', 'feature-log']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from streams.core.deadletter import Source, text_or_base64

if TYPE_CHECKING:  # type names only: settings imports this module for the topic names, and must stay light
    from models.scorer import ScoredRequest
    from streams.events import Request

__all__ = [
    "COMPACTED", "DEAD_LETTER", "EARLY_KINDS", "EARLY_POSITIVE", "EARLY_SENT", "EVENTS", "EXAMPLES", "FAKE_NEGATIVE",
    "FEATURE_LOG", "ITEM_DELTAS", "LEARNED_EARLY", "METRICS", "MODEL_SNAPSHOTS", "OUTPUT_FILES", "SCORES",
    "TOPIC_NAMES", "USER_KEYED", "LoggedVector", "Output", "dead_letter_output", "dead_letter_record", "dumps",
    "early_positive_record", "example_output", "example_record", "fake_negatives_record", "feature_log_output",
    "logged_vector", "score_output",
]

EVENTS = "events"
SCORES = "scores"
FEATURE_LOG = "feature-log"
EXAMPLES = "examples"
MODEL_SNAPSHOTS = "model-snapshots"
METRICS = "metrics"
DEAD_LETTER = "dead-letter"
ITEM_DELTAS = "item-deltas"

TOPIC_NAMES = (EVENTS, SCORES, FEATURE_LOG, EXAMPLES, MODEL_SNAPSHOTS, METRICS, DEAD_LETTER, ITEM_DELTAS)
"""Every logical topic (DESIGN.md, "Topics"), in the order commands list them."""
USER_KEYED = frozenset({EVENTS, SCORES, FEATURE_LOG})
"""Topics keyed by user_id: they share the events topic's partition count, so a user's records stay together."""
COMPACTED = frozenset({MODEL_SNAPSHOTS})
"""Topics where the newest record per key wins."""
OUTPUT_FILES = {SCORES: "scores.jsonl", FEATURE_LOG: "feature_log.jsonl", EXAMPLES: "examples.jsonl",
                DEAD_LETTER: "dead_letter.jsonl"}
"""The processor's outputs, and the file each one goes to in a replay's output directory."""


class LoggedVector:
    """A candidate's vector as it was scored, encoded once: the feature log, the waiting request (its store row)
    and its examples carry these bytes (a vector of ~50 floats cost ~3 µs to encode, and was encoded three times).

    >>> x = LoggedVector({"f": 0.5})
    >>> dumps({"x": x}), x.decoded()
    (b'{"x":{"f":0.5}}', {'f': 0.5})
    """

    __slots__ = ("raw",)

    def __init__(self, x: Mapping[str, float]) -> None:
        self.raw = orjson.dumps(x)

    def decoded(self) -> dict[str, float]:
        vector: dict[str, float] = orjson.loads(self.raw)
        return vector


def _fragment(obj: Any) -> orjson.Fragment:
    if type(obj) is LoggedVector:
        return orjson.Fragment(obj.raw)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")  # orjson's own words


def dumps(record: Any) -> bytes:
    """``orjson.dumps`` of a record that may hold :class:`LoggedVector` s (the same bytes as their dicts')."""
    return orjson.dumps(record, default=_fragment)


def logged_vector(x: Mapping[str, float] | LoggedVector) -> Mapping[str, float]:
    """A logged vector as a mapping: a waiting request read back from the store holds dicts, one scored since
    holds :class:`LoggedVector` s."""
    return x.decoded() if isinstance(x, LoggedVector) else x


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    """Logical topic name (``scores``, ``feature-log``, ``dead-letter``, ...); settings give the real one."""
    key: bytes | None
    value: bytes


def score_output(request: Request, scored: ScoredRequest) -> Output:
    """The served score of every candidate, keyed by user: what the caller of the scoring service reads."""
    item_ids = [c.item_id for c in request.candidates]
    return Output(SCORES, request.user_id.encode(), orjson.dumps({
        "request_id": request.request_id,
        "user_id": request.user_id,
        "ts": request.ts,
        "scores": [{"item_id": i, "score": s} for i, s in zip(item_ids, scored.served, strict=True)],
        "arm": scored.arm,
        "model": scored.model,
        "model_version": scored.model_version,
    }))


def feature_log_output(request: Request, scored: ScoredRequest,
                       vectors: Sequence[Mapping[str, float] | LoggedVector], versions: Mapping[str, int],
                       schema: str, item_vectors: int | None = None) -> Output:
    """The exact vectors a request was scored with, every model's scores and versions, the feature set's
    fingerprint, and the version of the item vectors its ``xvec_`` features used (0: none yet; absent when the
    item vectors are off): what training and the parity checks read."""
    item_ids = [c.item_id for c in request.candidates]
    return Output(FEATURE_LOG, request.user_id.encode(), dumps({
        "request_id": request.request_id,
        "user_id": request.user_id,
        "ts": request.ts,
        "arm": scored.arm,
        "features": [{"item_id": i, "x": x} for i, x in zip(item_ids, vectors, strict=True)],
        "scores": scored.per_model,
        "model_versions": versions,
        "schema": schema,
        **({} if item_vectors is None else {"item_vectors": item_vectors}),
    }))


def example_record(request_id: str, pending: Mapping[str, Any], index: int, y: int, label_ts: float) -> dict[str, Any]:
    """One training example: candidate ``index`` of a closed request, with the vector and scores it was served
    (marked :data:`LEARNED_EARLY` when the request's early records went out)."""
    item_id, x, scores = pending["items"][index]
    return {
        "request_id": request_id,
        "item_id": item_id,
        "user_id": pending["user_id"],
        "ts": pending["ts"],
        "label_ts": label_ts,
        "x": x,
        "y": y,
        "scores_at_serve": scores,
        "arm": pending["arm"],
        "served_model": pending["served"],
        "model_versions": pending["versions"],
        "schema": pending["schema"],
        **({LEARNED_EARLY: "fnw"} if pending.get(EARLY_SENT) else {}),
    }


FAKE_NEGATIVE, EARLY_POSITIVE = "fake_negative", "positive"
EARLY_KINDS = (FAKE_NEGATIVE, EARLY_POSITIVE)
"""The ``kind`` of the early records on ``examples`` (``STREAMSCORE_LEARN_FROM=fnw``, ``streams/core/early.py``):
a request's served candidates learned as negatives when it is scored (one record, every candidate in its
``items``), and a candidate again as a positive when its label comes. A window-closed example has no ``kind``;
its natural key is ``(request_id, item_id)``, an early record's ``(request_id, kind)`` for the fake negatives and
``(request_id, item_id, kind)`` for a positive (the learner remembers each candidate it learned by the latter)."""

LEARNED_EARLY = "learned"
"""Field of a window-closed example whose label the learner already learned from early records (value
``"fnw"``): the learner counts it in the metrics and does not learn it again."""
EARLY_SENT = "early"
"""Field of a waiting request (its ``pending`` entry) whose fake negatives went out: its positive goes out early
too, and its window-closed examples are :data:`LEARNED_EARLY`. Kept with the request, so a request waiting when
``learn_from`` changes, or evicted before its fake negatives, is learned once all the same."""


def fake_negatives_record(request_id: str, pending: Mapping[str, Any]) -> dict[str, Any]:
    """The early record of a request just scored: every candidate with its logged vector (what was served, nothing
    later) in ``items``, ``y`` 0, ``at`` the request's time. One record per request, not one per candidate: the
    worker's cost is per record sent, and a request has several candidates. No scores: early records never touch
    the metrics."""
    return {
        "kind": FAKE_NEGATIVE,
        "request_id": request_id,
        "user_id": pending["user_id"],
        "ts": pending["ts"],
        "at": pending["ts"],
        "items": [{"item_id": item_id, "x": x} for item_id, x, _ in pending["items"]],
        "y": 0,
        "schema": pending["schema"],
    }


def early_positive_record(request_id: str, pending: Mapping[str, Any], index: int, at: float) -> dict[str, Any]:
    """The early record of candidate ``index`` of a waiting request whose label came at event time ``at``: its
    logged vector, ``y`` 1."""
    item_id, x, _ = pending["items"][index]
    return {
        "kind": EARLY_POSITIVE,
        "request_id": request_id,
        "item_id": item_id,
        "user_id": pending["user_id"],
        "ts": pending["ts"],
        "at": at,
        "x": x,
        "y": 1,
        "schema": pending["schema"],
    }


def example_output(example: Mapping[str, Any]) -> Output:
    """An example or an early record, keyed by request id (one partition: the learner reads them in one order)."""
    return Output(EXAMPLES, str(example["request_id"]).encode(), dumps(example))


def dead_letter_record(raw: bytes, error: str, code: str, source: Source) -> bytes:
    """The raw bytes (losslessly: text when UTF-8, else base64), why they were refused and where they came from.

    >>> orjson.loads(dead_letter_record(b"\\xff{", "not valid JSON", "not_json", Source("events", 2, 17, b"u1")))
    {'raw': '/3s=', 'raw_encoding': 'base64', 'error': 'not valid JSON', 'code': 'not_json', \
'topic': 'events', 'partition': 2, 'offset': 17, 'key': 'u1'}
    """
    raw_text, encoding = text_or_base64(raw)
    key = None if source.key is None else text_or_base64(source.key)[0]
    return orjson.dumps({
        "raw": raw_text,
        "raw_encoding": encoding,
        "error": error,
        "code": code,
        "topic": source.topic,
        "partition": source.partition,
        "offset": source.offset,
        "key": key,
    })


def dead_letter_output(raw: bytes, error: str, code: str, source: Source) -> Output:
    return Output(DEAD_LETTER, None, dead_letter_record(raw, error, code, source))
