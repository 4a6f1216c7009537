"""A worker's ``GET /metrics``: its own counters, latencies and lag, and the learner's latest report.

Counters keep their meaning from :mod:`streams.core.processor` and the feeds; families that group several of them
carry a label (``dead_letter.not_json`` becomes ``streamscore_dead_letter_total{code="not_json"}``), and any
counter not named below still appears, as ``streamscore_<name>_total``, so a new counter is never invisible.

>>> from streams.core.counters import Counters
>>> from streams.core.timings import StageTimings
>>> from streams.ops.telemetry import WorkerTelemetry
>>> counters = Counters()
>>> counters.inc("events_in", 3); counters.inc("dead_letter", 1); counters.inc("dead_letter.not_json", 1)
>>> text = worker_prometheus(WorkerTelemetry(counters, StageTimings()), {"prod": 4}, None)
>>> [line for line in text.splitlines() if line.startswith(("streamscore_events_in", "streamscore_dead_letter"))]
['streamscore_events_in_total 3', 'streamscore_dead_letter_total{code="not_json"} 1']
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from streams.ops.prometheus import Sample, family, histogram_family, prometheus
from streams.ops.telemetry import WorkerTelemetry

__all__ = ["worker_prometheus"]

# counter name prefix -> (family, label, help): counters "<prefix><value>" become family{label="<value>"}.
_LABELLED = (
    ("dead_letter.", "streamscore_dead_letter_total", "code",
     "Input records sent to the dead-letter topic, by reason code."),
    ("labels_", "streamscore_labels_total", "outcome",
     "Label events (clicks or conversions) by what the join did with them: joined, late, duplicate, ..."),
    ("examples_", "streamscore_examples_total", "label", "Training examples emitted, by label."),
    ("snapshots_", "streamscore_snapshots_total", "outcome",
     "Model snapshot records read: swapped in, stale, refused (bad signature or unloadable), ignored."),
)
_PLAIN = {
    "events_in": "Input records read from the events topic.",
    "requests_scored": "Scoring requests answered (a score and a feature-log record each).",
    "events_late": "Events behind their partition's newest by more than the allowed lateness.",
    "events_redelivered": "Events redelivered after a restart whose outputs had already gone out (skipped).",
    "offset_gaps_filled": "Runs of offsets the consumer skipped, read again by the worker and processed in order.",
    "events_refetched": "Records read again to fill a gap the consumer left.",
    "partitions_reread": "Partitions the consumer was made to read again from an earlier offset: records a "
                         "rebalance dropped, or a stalled partition.",
    "partitions_stalled": "Times an owned partition had records waiting and none processed for stall_after seconds.",
    "stall_watch_errors": "Checks of the stall watch that failed (retried at the next one).",
    "offsets_missing": "Offsets of a gap the topic no longer holds (retention, transaction markers).",
    "requests_closed": "Requests whose attribution window closed (their examples went to the learner).",
    "requests_evicted": "Requests closed early because their user had too many waiting.",
    "users_expired": "Users whose state expired on their next event (idle past the TTL).",
    "users_swept": "Expired users deleted from the state by the sweep.",
}
_SKIPPED = frozenset({"dead_letter"})
"""The total of a labelled family (Prometheus sums the labels)."""


def _counter_families(counts: Mapping[str, int]) -> list[str]:
    labelled: dict[str, list[Sample]] = defaultdict(list)
    plain: dict[str, int] = {}
    for name, value in counts.items():
        for prefix, family_name, label, _ in _LABELLED:
            if name.startswith(prefix):
                labelled[family_name].append(({label: name[len(prefix):]}, value))
                break
        else:
            if name not in _SKIPPED:
                plain[name] = value
    lines: list[str] = []
    for name in sorted({*plain, *_PLAIN}):
        help_text = _PLAIN.get(name, f"Count of {name.replace('_', ' ')} since the worker started.")
        lines += family(f"streamscore_{name.replace('.', '_')}_total", "counter", help_text,
                        [({}, plain.get(name, 0))])
    for _, family_name, _, help_text in _LABELLED:
        lines += family(family_name, "counter", help_text, labelled.get(family_name, []))
    return lines


def worker_prometheus(telemetry: WorkerTelemetry, versions: Mapping[str, int],
                      learner_report: Mapping[str, Any] | None) -> str:
    """Prometheus text (version 0.0.4) of one worker; the learner's families when a report has arrived."""
    lines = _counter_families(telemetry.counters.snapshot())
    lines += family("streamscore_model_version", "gauge", "Version of each model the worker serves.",
                    [({"model": name}, version) for name, version in sorted(versions.items())])
    lines += family("streamscore_consumer_lag_messages", "gauge",
                    "Events behind the end of each assigned partition, as of the worker's last batch.",
                    [({"partition": str(p)}, n) for p, n in sorted(telemetry.lag.items())])
    lines += histogram_family("streamscore_event_to_score_seconds",
                              "From a request's produce time (record timestamp) to its score acknowledged by "
                              "the broker.", [({}, telemetry.event_to_score)])
    lines += histogram_family("streamscore_stage_seconds",
                              "Time per event in each stage (decode, label_join, features, score, update, event) "
                              "and per batch (deliver, state_write).",
                              [({"stage": name}, h) for name, h in sorted(telemetry.timings.stages.items())])
    text = "\n".join(lines) + "\n"
    if learner_report is not None:
        text += prometheus(learner_report)
    return text
