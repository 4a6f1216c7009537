"""Progressive AUC per period of event time, from a replay's ``examples.jsonl``: how a model did as it learned.

``python -m streams.tools.periods DIR [--period SECONDS] [--models prod,baseline]`` reads the window-closed
examples of ``DIR/examples.jsonl`` (the early records of ``STREAMSCORE_LEARN_FROM=fnw`` are skipped: they are
what the learner learned from, not what it is judged on) and prints, per period of the requests' event time
from the first request, the AUC of the score each model gave *when the request was served* against the final
label, and its log loss: the same numbers as the learner's progressive metrics, cut by time (``docs/learning.md``).

>>> rows = [{"ts": 0.0, "y": 1, "scores_at_serve": {"m": 0.9}}, {"ts": 10.0, "y": 0, "scores_at_serve": {"m": 0.2}},
...         {"ts": 3700.0, "y": 0, "scores_at_serve": {"m": 0.9}},
...         {"ts": 3800.0, "y": 1, "scores_at_serve": {"m": 0.1}}, {"kind": "fake_negative", "ts": 0.0, "y": 0}]
>>> [(i, n, positives, aucs) for i, n, positives, aucs, _ in per_period(rows, ["m"], 3600.0)]
[(0, 2, 1, {'m': 1.0}), (1, 2, 1, {'m': 0.0})]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from models.metrics import exact_auc, mean_logloss

__all__ = ["per_period"]


def per_period(examples: Iterable[Mapping[str, Any]], models: Sequence[str], period: float,
               aligned: bool = False) -> list[tuple[int, int, int, dict[str, float | None], dict[str, float]]]:
    """``(period index, examples, positives, {model: AUC or None}, {model: log loss})`` per period of request
    time, window-closed examples only (None: a period without both labels). ``aligned``: periods start at
    multiples of ``period`` since the epoch (UTC days with 86400), not at the first request."""
    closed = [e for e in examples if "kind" not in e]
    if not closed:
        return []
    start = min(float(e["ts"]) for e in closed)
    if aligned:
        start -= start % period
    buckets: dict[int, list[Mapping[str, Any]]] = {}
    for e in closed:
        buckets.setdefault(int((float(e["ts"]) - start) // period), []).append(e)
    out = []
    for index in sorted(buckets):
        rows = buckets[index]
        labels = [int(e["y"]) for e in rows]
        scores = {m: [float(e["scores_at_serve"][m]) for e in rows] for m in models}
        aucs = {m: exact_auc(scores[m], labels) for m in models}
        out.append((index, len(rows), sum(labels), aucs, {m: mean_logloss(scores[m], labels) for m in models}))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.tools.periods", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="a replay's output directory (streamscore replay --out)")
    parser.add_argument("--period", type=float, default=3600.0, help="seconds of event time per row (1 h)")
    parser.add_argument("--models", default="prod,baseline")
    parser.add_argument("--aligned", action="store_true", help="periods at multiples of --period since the epoch "
                        "(with 86400: UTC days); the first row starts there")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    with (args.dir / "examples.jsonl").open("rb") as f:
        rows = per_period((orjson.loads(line) for line in f), models, args.period, args.aligned)
    print("period\texamples\tpositives\t" + "\t".join(f"{m} AUC" for m in models) + "\t"
          + "\t".join(f"{m} log loss" for m in models))
    for index, n, positives, aucs, losses in rows:
        cells = "\t".join("-" if (auc := aucs[m]) is None else f"{auc:.3f}" for m in models) + "\t" + "\t".join(
            f"{losses[m]:.4f}" for m in models)
        print(f"{index}\t{n}\t{positives}\t{cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
