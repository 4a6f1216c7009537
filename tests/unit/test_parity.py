"""The point-in-time parity check passes on the real pipeline and catches planted leaks."""

from __future__ import annotations

from typing import Any

from features.base import UserFeature, Vector
from features.featureset import FeatureSet, default_features
from features.parity import point_in_time_mismatches
from features.state import UserState
from models.scorer import Scorer
from streams.core.processor import Processor
from streams.core.statecache import StateCache
from streams.events import Event, Request
from streams.replay.driver import ReplayDriver
from streams.settings import Settings
from streams.tools.simulate import simulate


def _replay(
    events: list[dict[str, Any]], features: FeatureSet, processor_cls: type[Processor] = Processor
) -> list[Any]:
    settings = Settings()
    driver = ReplayDriver(settings, processor_cls(settings, features, Scorer.fresh(["prod"])))
    driver.pipe_all(events)
    return driver.read("feature-log")


def test_the_shipped_features_are_point_in_time_on_a_simulated_stream() -> None:
    events, _ = simulate(users=30, events=1500, seed=3)
    features = FeatureSet.default(user_ttl=3600.0)  # short enough that some users expire in the stream
    log = _replay(events, features)
    assert len(log) > 300
    assert point_in_time_mismatches(events, log, features) == []


class RequestsIncludingThisOne(UserFeature):
    """A planted leak: counts requests while computing its value, so each request counts itself."""

    name = "leaky"
    reads = frozenset({"request"})

    def update(self, slot: Any, event: Event) -> Any:
        return slot or [0]

    def values(self, slot: Any, request: Request) -> Vector:
        if slot is None:
            return {"leaky_requests": 1.0}
        slot[0] += 1  # the triggering request changes the state the vector is read from
        return {"leaky_requests": float(slot[0])}


def test_a_feature_that_counts_the_triggering_request_is_caught() -> None:
    events, _ = simulate(users=10, events=300, seed=5)
    leaky = FeatureSet([*default_features(), RequestsIncludingThisOne()])
    log = _replay(events, leaky)
    mismatches = point_in_time_mismatches(events, log, leaky)
    assert mismatches, "the parity check missed a feature that counts the request it is computed for"
    assert "leaky_requests" in str(mismatches[0])


class UpdateThenScore(Processor):
    """A planted pipeline bug: the request updates the state before its vector is built."""

    def _score(self, request: Request, state: UserState, states: StateCache, partition: int) -> list[Any]:
        self.features.update(state, request, position=-1)
        return super()._score(request, state, states, partition)


def test_updating_the_state_before_scoring_is_caught() -> None:
    events, _ = simulate(users=10, events=300, seed=5)
    features = FeatureSet.default()
    mismatches = point_in_time_mismatches(events, _replay(events, features, UpdateThenScore), features)
    assert mismatches
    first = mismatches[0]
    assert first.logged["count_request"] == first.point_in_time.get("count_request", 0.0) + 1
