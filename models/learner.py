"""The learner: examples in, signed model snapshots and functional metrics out; pure and deterministic.

The same class runs live (``streams/learner/process.py``, fed from the ``examples`` topic) and in the
in-process replay driver. Given the same examples in the same order it learns the same models, byte for byte:
nothing here reads a clock, and the wall time a caller passes to :meth:`Learner.due_snapshot` only decides
*when* snapshots are published, never what is learned.

For each new example, in this order (predict-then-learn):

1. skip it if its natural key ``(request_id, item_id)`` was already learned (a redelivery: counted in
   ``duplicates``);
2. update the progressive metrics of every known model from ``scores_at_serve``, the score each model gave
   when the request was served, i.e. *before* it learned from this example;
3. update the arm's sample with the log loss of the score that was actually served (for experiment reports);
4. ``learn_one(x, y)`` on every model, unless the example is marked learned already (``"learned": "fnw"``).

With ``STREAMSCORE_LEARN_FROM=fnw`` the workers also send *early records* (``kind``: ``fake_negative`` at serve
time, ``positive`` when the label comes; ``streams/core/early.py``): those are learned at once with the fake
negative weights of ``models/fnw.py`` and never touch the metrics, and the window-closed examples they precede
are marked learned: counted in the metrics, not learned twice. What is learned follows the records, so a learner
needs no setting of its own to follow the workers'.

:meth:`Learner.snapshots` returns one signed snapshot per model plus a signed **checkpoint** of the learner
itself, under the name :data:`CHECKPOINT`: models, remembered keys, metrics, arm samples, versions and the last
consumed offset, so that :meth:`Learner.from_checkpoint` resumes exactly where the snapshot was taken. Models are
pickled from a canonical copy (equal strings shared by value, not by identity), so a restored learner publishes
the very bytes an uninterrupted one would.

>>> from models.tripwire import Tripwire
>>> learner = Learner(["prod", "baseline"], snapshot_every=2, key=b"k", metrics_window=100,
...                   tripwire=Tripwire(min_count=1))
>>> example = {"request_id": "r1", "item_id": "a", "x": {"cand_position": 0.0}, "y": 1,
...            "scores_at_serve": {"prod": 0.8, "baseline": 0.1}, "arm": "A", "served_model": "prod"}
>>> learner.learn_one(example, offset=0), learner.learn_one(example, offset=1)  # the second is a redelivery
(True, False)
>>> learner.examples, learner.duplicates, learner.due_snapshot()
(1, 1, False)
>>> report = learner.report()
>>> round(report["models"]["prod"]["cumulative"]["logloss"], 4)  # -log(0.8): the score at serve time
0.2231
>>> report["tripwire"]["alert"], round(report["tripwire"]["prod"], 4), round(report["tripwire"]["baseline"], 4)
(False, 0.2231, 2.3026)
>>> second = dict(example, request_id="r2", y=0)
>>> learner.learn_one(second, offset=2), learner.due_snapshot()
(True, True)
>>> [(name, load_snapshot(blob, key=b"k").version) for name, blob in learner.snapshots()]
[('prod', 1), ('baseline', 1), ('__learner__', 1)]
>>> again = load_snapshot(learner.snapshots()[0][1], key=b"k")  # another round, same examples
>>> again.version, again.meta
(2, {'examples': 2, 'offset': 2})

"""

from __future__ import annotations

import io
import math
import pickle
import zlib
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import orjson

from models import fnw
from models.arms import unit_hash
from models.experiment import experiment_from_settings, model_names
from models.fnw import parse_early
from models.metrics import ALL_ARMS, MetricsBook, ProgressiveMetrics, logloss
from models.registry import build
from models.significance import ArmSample, Comparison, Difference, compare_arms
from models.snapshots import dump_snapshot, load_snapshot
from models.tripwire import Tripwire
from streams.core.early import FNW
from streams.core.records import LEARNED_EARLY
from streams.core.seen import SeenKeys
from streams.settings import Settings

__all__ = ["BASELINE", "CHECKPOINT", "PROD", "BadExample", "Learner", "learner_from_settings", "tripwire_from_settings"]

CHECKPOINT = "__learner__"
"""Name (and ``model-snapshots`` key) of the learner's own checkpoint; scorers ignore it."""

PROD, BASELINE = "prod", "baseline"
"""The two models the tripwire compares."""

_CHECKPOINT_FORMAT = 1
_NEGATIVE_SAMPLING_SALT = "negative-sampling"


class BadExample(ValueError):
    """An example record that does not follow the contract; the learner changed nothing."""


@dataclass(frozen=True, slots=True)
class _Example:
    key: tuple[Hashable, Hashable]
    x: dict[Hashable, Any]  # River's signature
    y: bool
    scores: dict[str, float]
    """``scores_at_serve`` restricted to the models the learner knows."""
    arm: str
    served_score: float
    """The score of the model the arm served: its log loss (clipped like the metrics') feeds the arm sample."""
    unit: str
    """The randomisation unit (the user): the arm intervals treat one user's examples as one unit."""
    learned: bool = False
    """Its label was learned already from early records (``learn_from=fnw``): metrics only."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_vector(x: Any) -> None:
    if not isinstance(x, Mapping):
        raise BadExample(f"x must be an object of numbers, got {type(x).__name__}")
    isfinite = math.isfinite
    for feature, value in x.items():
        # One NaN would poison a linear model's weights for good: refuse it at the door. The exact types first:
        # decoded JSON has no others, and this loop was a quarter of the learner's time (cProfile, fnw).
        kind = type(value)
        if (kind is float or kind is int or _is_number(value)) and isfinite(value):
            continue
        raise BadExample(f"feature {feature!r} must be a finite number, got {value!r}")


def _parse(example: Mapping[str, Any], names: Sequence[str]) -> _Example:
    """Check an example completely *before* anything is updated, so a bad one leaves no half-learned state."""
    if not isinstance(example, Mapping):
        raise BadExample(f"an example must be a JSON object, got {type(example).__name__}")
    missing = [f for f in ("request_id", "item_id", "x", "y", "scores_at_serve", "arm", "served_model")
               if f not in example]
    if missing:
        raise BadExample(f"missing field(s): {', '.join(missing)}")
    request_id, item_id = example["request_id"], example["item_id"]
    for field, value in (("request_id", request_id), ("item_id", item_id)):
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise BadExample(f"{field} must be a string, got {value!r}")
    y = example["y"]
    if y not in (0, 1) or not isinstance(y, int):  # 0, 1, False or True
        raise BadExample(f"y must be 0 or 1, got {y!r}")
    x = example["x"]
    learned = example.get(LEARNED_EARLY) == FNW
    if not learned:  # an example learned from early records already feeds the metrics only: its x is not read
        _check_vector(x)
    scores_at_serve, arm, served = example["scores_at_serve"], example["arm"], example["served_model"]
    if not isinstance(scores_at_serve, Mapping):
        raise BadExample("scores_at_serve must be an object {model: score}")
    if not isinstance(arm, str) or not arm or arm == ALL_ARMS:
        raise BadExample(f"arm must be a non-empty string other than {ALL_ARMS!r}, got {arm!r}")
    if not isinstance(served, str) or served not in scores_at_serve:
        raise BadExample(f"served_model {served!r} has no score in scores_at_serve")
    for model in {*names, served}:
        p = scores_at_serve.get(model)
        if p is not None and not (_is_number(p) and 0.0 <= p <= 1.0):
            raise BadExample(f"scores_at_serve[{model!r}] must be a probability in [0, 1], got {p!r}")
    scores = {name: float(scores_at_serve[name]) for name in names if name in scores_at_serve}
    unit = str(example.get("user_id") or request_id)  # examples without a user count as their own unit
    return _Example((request_id, item_id), {} if learned else dict(x), bool(y), scores, arm,
                    float(scores_at_serve[served]), unit, learned)


def _difference(diff: Difference | None) -> dict[str, float] | None:
    return None if diff is None else {"estimate": diff.estimate, "low": diff.low, "high": diff.high}


def _comparison(a: str, b: str, result: Comparison) -> dict[str, Any]:
    return {"a": a, "b": b, "label_rate": _difference(result.label_rate), "logloss": _difference(result.logloss),
            "significant": result.significant, "confidence": result.confidence}


class _CanonicalPickler(pickle.Pickler):
    """Pickles every string as an index into a table of distinct values.

    The standard pickler shares a string only between references to the *same object*, so two models with the
    same content can pickle differently: after a restart, a dict key that used to be the very object holding a
    class's name (written once) is an equal but separate string (written twice). Writing strings by value
    makes the bytes depend on the content only; that is what makes a restored learner publish snapshots
    byte-identical to an uninterrupted one.
    """

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=5)
        self.strings: dict[str, int] = {}

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) is str:
            return self.strings.setdefault(obj, len(self.strings))
        return None


class _CanonicalUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, strings: list[str]) -> None:
        super().__init__(io.BytesIO(data))
        self.strings = strings

    def persistent_load(self, pid: Any) -> str:
        return self.strings[pid]


def _canonical_dumps(obj: Any) -> tuple[bytes, list[str]]:
    buffer = io.BytesIO()
    pickler = _CanonicalPickler(buffer)
    pickler.dump(obj)
    return buffer.getvalue(), list(pickler.strings)


def _canonical_loads(data: bytes, strings: list[str]) -> Any:
    return _CanonicalUnpickler(data, strings).load()


def _canonical_copy(obj: Any) -> Any:
    """A deep copy whose object graph depends only on ``obj``'s content: equal strings are one new object.

    New, because the table holds the first occurrence of each string, which may be the very object naming a
    class; the plain pickle of the copy must not depend on that either.
    """
    data, strings = _canonical_dumps(obj)
    return _canonical_loads(data, pickle.loads(pickle.dumps(strings, protocol=5)))


class Learner:
    """Learns every model in ``names`` from examples, keeps their progressive metrics, and snapshots them.

    Parameters
    ----------
    names
        Models to learn, by name in ``models/registry.py``.
    snapshot_every
        :meth:`due_snapshot` is true once this many new examples were learned since the last snapshot.
    key
        HMAC key that signs the snapshots and the checkpoint.
    metrics_window
        Size of the "recent" window of the progressive metrics and the tripwire.
    tripwire
        Compares ``prod`` with ``baseline`` on the recent window.
    max_seen
        How many natural keys are remembered to skip redeliveries (a FIFO: the oldest are forgotten first).
        A redelivery comes from a producer that crashed before committing, so it follows its original within
        that producer's commit interval, far fewer records than this. The checkpoint carries them: about 24
        bytes a key once compressed (random request ids), i.e. ~24 MB at the default.
    snapshot_seconds
        :meth:`due_snapshot` is also true this many seconds (of the caller's clock) after the last snapshot,
        if at least one new example was learned since. ``None``: by count only.
    baseline
        The model the name ``baseline`` stands for (``STREAMSCORE_BASELINE``: ``item_rate`` or
        ``position_ctr``, see ``models/registry.py``).
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        snapshot_every: int,
        key: bytes,
        metrics_window: int,
        tripwire: Tripwire,
        max_seen: int = 1_000_000,
        snapshot_seconds: float | None = None,
        negative_rate: float = 1.0,
        baseline: str = "item_rate",
    ) -> None:
        names = list(names)
        if not names or len(set(names)) != len(names) or CHECKPOINT in names:
            raise ValueError(f"names must be unique, non-empty and not {CHECKPOINT!r}, got {names!r}")
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"snapshot_every must be an int >= 1, got {snapshot_every!r}")
        if snapshot_seconds is not None and not (snapshot_seconds > 0 and math.isfinite(snapshot_seconds)):
            raise ValueError(f"snapshot_seconds must be a finite number > 0 or None, got {snapshot_seconds!r}")
        if not isinstance(key, bytes | bytearray) or not key:
            raise ValueError("the snapshot key must be non-empty bytes")
        if not (0.0 < negative_rate <= 1.0):
            raise ValueError(f"negative_rate must be in (0, 1], got {negative_rate!r}")
        self.names = names
        self.negative_rate = negative_rate
        """Share of negative examples the models learn from, each weighted 1/rate (``negative_sample_rate``)."""
        self.snapshot_every = snapshot_every
        self.snapshot_seconds = snapshot_seconds
        self.key = bytes(key)
        self.tripwire = tripwire
        self.models = {name: build(name, baseline) for name in names}
        self.versions = dict.fromkeys(names, 0)
        """The version of each model's newest snapshot (0: none yet)."""
        # The learner's own FIFO decides what is new, so the book only needs to tell the models of *one*
        # example apart: remembering len(names) keys keeps its memory (and the checkpoint) small.
        self.book = MetricsBook(window=metrics_window, max_seen=len(names))
        self.arms: dict[str, ArmSample] = {}
        self.examples = 0
        """Distinct examples learned."""
        self.duplicates = 0
        """Redelivered examples skipped."""
        self.rejected = 0
        """Records refused as malformed (see :meth:`reject_one`)."""
        self.negatives_skipped = 0
        """Negative examples counted in the metrics but not learned from (negative subsampling)."""
        self.fake_negatives = 0
        """Fake negatives taken (``learn_from=fnw``): learned, or skipped by negative subsampling (also counted in
        :attr:`negatives_skipped`)."""
        self.early_positives = 0
        """Early records learned as positives when their label came (``learn_from=fnw``)."""
        self.offset: int | None = None
        """The last consumed offset of the ``examples`` topic (learned, skipped or rejected)."""
        self.pending = 0
        """Examples learned since the last snapshot."""
        self._seen: SeenKeys[tuple[Hashable, ...]] = SeenKeys(max_seen)
        self._clock: float | None = None  # caller's time of the last snapshot; never part of the checkpoint
        self.arm_models: dict[str, str] = {}
        """arm -> the model it serves (configuration, not learned state): each arm's served model is held to
        the tripwire against the baseline on that arm's own examples."""

    # -- learning ---------------------------------------------------------------------------------------------

    def learn_one(self, example: Mapping[str, Any], offset: int | None = None) -> bool:
        """Learn one example record (predict-then-learn); returns whether it was new.

        ``offset`` is its position in the ``examples`` topic, remembered for the checkpoint. Raises
        :class:`BadExample` for a record that breaks the contract, having changed nothing (not even the
        offset: call :meth:`reject_one` to step over it).
        """
        if isinstance(example, Mapping) and "kind" in example:
            return self._learn_early(example, offset)
        ex = _parse(example, self.names)
        self._consumed(offset)
        if ex.key in self._seen:
            self.duplicates += 1
            return False
        # Metrics first: the serving scores were produced before any model saw this label.
        for name, p in ex.scores.items():
            self.book.update_one(ex.key, name, ex.arm, ex.y, p)
        self.arms.setdefault(ex.arm, ArmSample()).update_one(ex.y, logloss(ex.y, ex.served_score), ex.unit)
        if ex.learned:
            self._seen.add(ex.key)
            self.examples += 1
            return True
        weight = self._weight(ex.y, ex.key)
        if weight is None:
            self.negatives_skipped += 1
        elif weight == 1.0:
            for model in self.models.values():
                model.learn_one(ex.x, ex.y)
        else:
            for model in self.models.values():
                # River's abstract learn_one has no weight; every registry model takes one (models/checks.py).
                model.learn_one(ex.x, ex.y, w=weight)  # type: ignore[call-arg]
        self._seen.add(ex.key)
        self.examples += 1
        self.pending += 1
        return True

    def _learn_early(self, record: Mapping[str, Any], offset: int | None) -> bool:
        """Learn an early record (``learn_from=fnw``: a request's fake negatives at serve time, a positive when its
        label comes), each candidate with its FNW weight (``models/fnw.py``), times the subsampling weight of a kept
        negative; a candidate learned already (a redelivery) is skipped by its key. The metrics are not touched:
        they count the window-closed example, once."""
        candidates = parse_early(record, BadExample)
        for ex in candidates:
            _check_vector(ex.x)
        self._consumed(offset)
        new = False
        for ex in candidates:
            if ex.key in self._seen:
                self.duplicates += 1
                continue
            sampled = self._weight(ex.y, ex.key[:2])
            if sampled is None:
                self.negatives_skipped += 1
            else:
                for model in self.models.values():
                    # p is the model's own prediction before this update, a constant: no gradient through it.
                    w = sampled * fnw.weight(ex.y, fnw.own_probability(model, ex.x))
                    model.learn_one(ex.x, ex.y, w=w)  # type: ignore[call-arg]  # every registry model takes one
            self._seen.add(ex.key)
            if ex.y:
                self.early_positives += 1
            else:
                self.fake_negatives += 1
            self.pending += 1
            new = True
        return new

    def _weight(self, y: bool, key: tuple[Hashable, ...]) -> float | None:
        """The weight the models learn ``ex`` with, or None to skip it: negatives are kept at ``negative_rate``
        with weight 1/rate, so the expected gradient is that of all of them (McMahan et al. 2013, "Ad click
        prediction: a view from the trenches", section 6). Which ones is a hash of the example's key, so a
        replay, a redelivery and a restarted learner keep the same ones."""
        if y or self.negative_rate >= 1.0:
            return 1.0
        if unit_hash(_NEGATIVE_SAMPLING_SALT, f"{key[0]}\x00{key[1]}") >= self.negative_rate:
            return None
        return 1.0 / self.negative_rate

    def reject_one(self, offset: int | None = None) -> None:
        """Step over a record that could not be learned (not JSON, or a :class:`BadExample`): count it."""
        self._consumed(offset)
        self.rejected += 1

    def _consumed(self, offset: int | None) -> None:
        if offset is not None:
            self.offset = offset

    @property
    def max_seen(self) -> int:
        """How many natural keys are remembered to skip redeliveries."""
        return self._seen.capacity

    # -- snapshots ----------------------------------------------------------------------------------------------

    def due_snapshot(self, now: float | None = None) -> bool:
        """Whether to publish: ``snapshot_every`` new examples since the last snapshot, or, when ``now`` is
        given, ``snapshot_seconds`` since the last snapshot with at least one new example.

        The clock starts at the first call with ``now`` (or at :meth:`snapshots` with ``now``).
        """
        if self.pending == 0:
            return False
        if self.pending >= self.snapshot_every:
            return True
        if now is None or self.snapshot_seconds is None:
            return False
        if self._clock is None:
            self._clock = now
            return False
        return now - self._clock >= self.snapshot_seconds

    def snapshots(self, now: float | None = None, *, checkpoint: bool = True) -> list[tuple[str, bytes]]:
        """``[(name, signed snapshot)]`` for every model, then ``(CHECKPOINT, signed checkpoint)`` unless
        ``checkpoint`` is false (an in-process replay has nothing to resume).

        Each call is one snapshot round: every model's version goes up by 1.
        """
        for name in self.names:
            self.versions[name] += 1
        meta = {"examples": self.examples, "offset": self.offset}
        # The plain pickle that scorers load, of a canonical copy: the bytes depend on what was learned only.
        out = [(name, dump_snapshot(_canonical_copy(self.models[name]), name=name, version=self.versions[name],
                                    key=self.key, meta=meta)) for name in self.names]
        self.pending = 0
        self._clock = now
        if checkpoint:
            out.append((CHECKPOINT, self.checkpoint()))
        return out

    def checkpoint(self) -> bytes:
        """The signed checkpoint alone (versions unchanged): everything :meth:`from_checkpoint` needs."""
        state = {
            "names": self.names,
            "models": self.models,
            "versions": self.versions,
            "book": self.book,
            "arms": self.arms,
            "counts": {"examples": self.examples, "duplicates": self.duplicates, "rejected": self.rejected,
                       "negatives_skipped": self.negatives_skipped, "fake_negatives": self.fake_negatives,
                       "early_positives": self.early_positives},
            "offset": self.offset,
            "pending": self.pending,
            "config": {"snapshot_every": self.snapshot_every, "snapshot_seconds": self.snapshot_seconds,
                       "tripwire": self.tripwire, "max_seen": self.max_seen, "negative_rate": self.negative_rate},
        }
        data, strings = _canonical_dumps(state)
        # The remembered keys are most of the bytes (~28 bytes a key): JSON, compressed about 6 times.
        seen = zlib.compress(orjson.dumps(list(self._seen)), 1)
        checkpoint = {"format": _CHECKPOINT_FORMAT, "strings": strings, "state": data, "seen": seen}
        return dump_snapshot(checkpoint, name=CHECKPOINT, version=max(self.versions.values()), key=self.key,
                             meta={"examples": self.examples, "offset": self.offset})

    @classmethod
    def from_checkpoint(
        cls,
        blob: bytes,
        *,
        key: bytes,
        names: Sequence[str] | None = None,
        snapshot_every: int | None = None,
        snapshot_seconds: float | None = None,
        tripwire: Tripwire | None = None,
        max_seen: int | None = None,
        negative_rate: float | None = None,
    ) -> Learner:
        """The learner a checkpoint was taken from, ready to continue with the next offset.

        The signature is checked before anything is unpickled (:class:`~models.snapshots.SnapshotRejected`).
        Settings left ``None`` keep the checkpoint's. A model of ``names`` absent from the checkpoint starts
        fresh at version 0; a checkpointed model absent from ``names`` is dropped.
        """
        snapshot = load_snapshot(blob, key=key)
        checkpoint = snapshot.model
        if snapshot.name != CHECKPOINT or not isinstance(checkpoint, dict):
            raise ValueError(f"not a learner checkpoint: {snapshot.name!r}")
        if checkpoint.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"learner checkpoint format {checkpoint.get('format')!r}, this code reads "
                             f"{_CHECKPOINT_FORMAT}")
        state = _canonical_loads(checkpoint["state"], checkpoint["strings"])
        config = state["config"]
        learner = cls(
            list(state["names"]) if names is None else names,
            snapshot_every=config["snapshot_every"] if snapshot_every is None else snapshot_every,
            key=key,
            metrics_window=state["book"].window,
            tripwire=config["tripwire"] if tripwire is None else tripwire,
            max_seen=config["max_seen"] if max_seen is None else max_seen,
            snapshot_seconds=config["snapshot_seconds"] if snapshot_seconds is None else snapshot_seconds,
            negative_rate=config.get("negative_rate", 1.0) if negative_rate is None else negative_rate,
        )
        for name in learner.names:
            if name in state["models"]:
                learner.models[name] = state["models"][name]
                learner.versions[name] = state["versions"][name]
        learner.book = state["book"]
        learner.book.max_seen = max(learner.book.max_seen, len(learner.names))
        learner.arms = state["arms"]
        learner.examples = state["counts"]["examples"]
        learner.duplicates = state["counts"]["duplicates"]
        learner.rejected = state["counts"]["rejected"]
        learner.negatives_skipped = state["counts"].get("negatives_skipped", 0)
        learner.fake_negatives = state["counts"].get("fake_negatives", 0)
        learner.early_positives = state["counts"].get("early_positives", 0)
        learner.offset = state["offset"]
        learner.pending = state["pending"]
        for key in orjson.loads(zlib.decompress(checkpoint["seen"])):
            learner._seen.add(tuple(key))  # (request_id, item_id), or (request_id, item_id, kind) of early records
        return learner

    def advance_versions(self, published: Mapping[str, int]) -> None:
        """Never reuse a version number: lift each model's version to at least the newest one ``published``.

        After a crash between publishing the model snapshots and the checkpoint, the topic holds versions the
        checkpoint does not know; the next round must number past them.
        """
        for name, version in published.items():
            if name in self.versions and version > self.versions[name]:
                self.versions[name] = version

    # -- reporting ------------------------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Functional metrics: per model (all arms and per arm), tripwire, experiment arms and their comparisons."""
        book = self.book.report()
        empty = ProgressiveMetrics(window=self.book.window).report()
        models: dict[str, Any] = {}
        for name in self.names:
            arms = book.get(name, {})
            overall = arms.get(ALL_ARMS, empty)
            models[name] = {"cumulative": overall["cumulative"], "recent": overall["recent"],
                            "per_arm": {arm: r for arm, r in arms.items() if arm != ALL_ARMS}}
        if PROD in models and BASELINE in models:
            state = self.tripwire.check(models[PROD], models[BASELINE])
            tripwire: dict[str, Any] = {"alert": state.alert, "reason": state.reason, "prod": state.prod,
                                        "baseline": state.baseline}
        else:
            absent = " and ".join(n for n in (PROD, BASELINE) if n not in models)
            tripwire = {"alert": False, "reason": f"no {absent} model: the tripwire compares {PROD} with {BASELINE}",
                        "prod": None, "baseline": None}
        tripwire["metric"] = self.tripwire.metric
        tripwire["arms"] = self._arm_tripwires(models)
        if any(arm["alert"] for arm in tripwire["arms"].values()):
            tripwire["alert"] = True
            tripwire["reason"] = "; ".join(f"arm {a}: {t['reason']}" for a, t in tripwire["arms"].items() if t["alert"])
        arm_names = sorted(self.arms)
        experiment = {arm: _arm_summary(self.arms[arm]) for arm in arm_names}
        comparisons = [_comparison(a, b, compare_arms(self.arms[a], self.arms[b]))
                       for a, b in combinations(arm_names, 2)]
        return {
            "models": models,
            "tripwire": tripwire,
            "experiment": experiment,
            "comparisons": comparisons,
            "examples": self.examples,
            "duplicates": self.duplicates,
            "negatives_skipped": self.negatives_skipped,
            **({"fake_negatives": self.fake_negatives, "early_positives": self.early_positives}
               if self.fake_negatives or self.early_positives else {}),
            "rejected": self.rejected,
            "offset": self.offset,
            "snapshots": dict(self.versions),
        }


    def _arm_tripwires(self, models: dict[str, Any]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for arm, served in sorted(self.arm_models.items()):
            if served == BASELINE or served not in models or BASELINE not in models:
                continue
            mine, base = models[served]["per_arm"].get(arm), models[BASELINE]["per_arm"].get(arm)
            if mine is None or base is None:
                continue
            state = self.tripwire.check(mine, base)
            out[arm] = {"model": served, "alert": state.alert, "reason": f"{served}: {state.reason}",
                        "served": state.prod, "baseline": state.baseline}
        return out


def _arm_summary(sample: ArmSample) -> dict[str, Any]:
    """An arm's size, label rate and mean log loss, each rate with its 95 % interval over user buckets."""
    out: dict[str, Any] = {"n": sample.n, "label_rate": sample.label_rate,
                           "logloss": sample.loss_mean if sample.n else None}
    for metric in ("label_rate", "logloss"):
        interval = sample.interval(metric)
        out[f"{metric}_low"], out[f"{metric}_high"] = interval if interval else (None, None)
    return out


def tripwire_from_settings(settings: Settings) -> Tripwire:
    return Tripwire(margin=settings.tripwire_margin, min_count=settings.tripwire_min_count)


def learner_from_settings(settings: Settings) -> Learner:
    """A fresh learner of ``settings.models`` with the settings' cadence, key, metrics window and tripwire.

    >>> learner = learner_from_settings(Settings(snapshot_every=3))
    >>> learner.names, learner.snapshot_every, learner.versions
    (['prod', 'baseline'], 3, {'prod': 0, 'baseline': 0})
    """
    learner = Learner(model_names(settings), snapshot_every=settings.snapshot_every,
                      key=settings.snapshot_key.encode(), metrics_window=settings.metrics_window,
                      tripwire=tripwire_from_settings(settings), snapshot_seconds=settings.snapshot_seconds,
                      max_seen=settings.learner_max_seen, negative_rate=settings.negative_sample_rate,
                      baseline=settings.baseline)
    learner.arm_models = arm_models(settings)
    return learner


def arm_models(settings: Settings) -> dict[str, str]:
    return {arm.name: arm.model for arm in experiment_from_settings(settings).arms}
