"""Every model of the registry keeps the model contract (``models/checks.py``): a model declared in
``models/registry.py`` brings these tests with it, with no list here to keep."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from models.checks import CHECKS, check_pickle_has_no_set, check_probabilities, examples
from models.registry import MODELS


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_contract(name: str, check: Callable[[str], None]) -> None:
    check(name)


def test_the_examples_have_both_labels_and_the_default_features() -> None:
    labels = [y for _, y in examples()]
    assert 0 < sum(labels) < len(labels)
    assert all("cand_position" in x for x, _ in examples())


def test_a_model_scoring_outside_zero_one_fails_its_check(monkeypatch: pytest.MonkeyPatch) -> None:
    class Overconfident:
        def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
            return {True: 1.5, False: -0.5}

        def learn_one(self, x: dict[str, float], y: bool) -> None:
            pass

    monkeypatch.setitem(MODELS, "overconfident", Overconfident)
    with pytest.raises(AssertionError, match=r"overconfident: score 1\.5"):
        check_probabilities("overconfident")


class RemembersPositions:
    """Keeps the candidate positions it saw in a set: module level, so that pickle finds the class."""

    def __init__(self) -> None:
        self.positions: set[float] = set()

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        return {True: 0.5, False: 0.5}

    def learn_one(self, x: dict[str, float], y: bool) -> None:
        self.positions.add(x.get("cand_position", 0.0))


def test_a_model_pickling_a_set_fails_its_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "remembers_positions", RemembersPositions)
    with pytest.raises(AssertionError, match=r"remembers_positions: its pickle holds 1 set"):
        check_pickle_has_no_set("remembers_positions")
