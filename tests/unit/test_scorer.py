from typing import Any

import pytest
from river import base

from models.baseline import SmoothedCTR
from models.registry import build
from models.scorer import LiveModel, Scorer


class Constant(base.Classifier):
    """A model that always says ``p``: scores that can be checked by eye."""

    def __init__(self, p: float) -> None:
        self.p = p

    def learn_one(self, x, y):
        pass

    def predict_proba_one(self, x, **kwargs):
        return {False: 1.0 - self.p, True: self.p}


def by_prefix(user_id: str) -> tuple[str, str]:
    return ("B", "baseline") if user_id.startswith("b") else ("A", "prod")


def trained_baseline() -> SmoothedCTR:
    model = SmoothedCTR(key="cand_position", prior_mean=0.1, prior_weight=20.0)
    for y in [True, True] + [False] * 8:  # position 0: 2 clicks in 10
        model.learn_one({"cand_position": 0.0}, y)
    return model


def test_every_model_scores_every_candidate_and_the_arm_picks_the_served_one():
    scorer = Scorer([LiveModel("prod", 4, Constant(0.7)), LiveModel("baseline", 9, trained_baseline())], by_prefix)
    vectors = [{"cand_position": 0.0}, {"cand_position": 1.0}]
    # baseline: position 0 -> (2 + 20 * 0.1) / (10 + 20) = 4/30; position 1 unseen -> the global bucket, same data
    shadow = {"prod": [0.7, 0.7], "baseline": [pytest.approx(4 / 30), pytest.approx(4 / 30)]}

    a = scorer.score_one("a-user", vectors)
    assert (a.arm, a.model, a.model_version) == ("A", "prod", 4)
    assert a.per_model == shadow
    assert a.served == [0.7, 0.7]

    b = scorer.score_one("b-user", vectors)
    assert (b.arm, b.model, b.model_version) == ("B", "baseline", 9)
    assert b.per_model == shadow
    assert b.served == [pytest.approx(4 / 30)] * 2


def test_an_arm_serving_a_model_that_is_not_live_is_an_error():
    scorer = Scorer([LiveModel("prod", 0, Constant(0.5))], by_prefix)
    with pytest.raises(KeyError, match="arm 'B' serves model 'baseline', which is not live"):
        scorer.score_one("b-user", [{}])


def test_swap_takes_only_newer_versions():
    scorer = Scorer.fresh(["prod", "baseline"])
    v1, v2, older, same = (LiveModel("prod", v, Constant(p)) for v, p in [(1, 0.2), (2, 0.3), (1, 0.9), (2, 0.8)])
    assert scorer.swap(v1) is True
    assert scorer.swap(v2) is True
    assert scorer.swap(older) is False
    assert scorer.swap(same) is False
    assert scorer.models["prod"] is v2
    assert scorer.versions == {"prod": 2, "baseline": 0}
    out = scorer.score_one("u", [{}])
    assert (out.model_version, out.served) == (2, [0.3])


def test_a_fresh_model_is_version_zero_so_a_version_zero_snapshot_is_stale():
    scorer = Scorer.fresh(["prod"])
    assert scorer.swap(LiveModel("prod", 0, build("prod"))) is False


def test_swap_refuses_a_model_that_is_not_live():
    scorer = Scorer.fresh(["prod"])
    with pytest.raises(KeyError, match="model 'baseline' is not live"):
        scorer.swap(LiveModel("baseline", 1, Constant(0.1)))
    assert list(scorer.models) == ["prod"]


@pytest.mark.parametrize("name", ["prod", "item_rate"])
def test_a_request_scored_together_gives_the_floats_of_one_by_one(name: str) -> None:
    """``predict_request`` (the scorer's path) against ``predict_proba_one``, bit for bit, before and after
    learning: dense features (one with no spread), one-hots, hashed ids, features the model never saw."""
    import random

    rng = random.Random(7)
    model: Any = build(name)  # OffsetLogistic or ItemRate: the models with predict_request

    def vector() -> dict[str, float]:
        x = {"xitem_logit": rng.uniform(-4, 0), "xitem_rate": rng.random(), "constant": 3.0,
             "price": rng.uniform(1, 200), f"cand_category=c{rng.randrange(5)}": 1.0, f"xid_{rng.randrange(50)}": 1.0}
        if rng.random() < 0.3:
            x[f"unseen_{rng.randrange(3)}"] = rng.random()
        return x

    for _ in range(3):
        xs = [vector() for _ in range(40)]
        assert model.predict_request(xs) == [model.predict_proba_one(x)[True] for x in xs]
        for x in xs:
            model.learn_one(x, rng.random() < 0.2)


def test_every_registered_model_scores_a_request_as_it_scores_one_candidate() -> None:
    """The scorer's path for each model of the registry (River's pipelines have a ``predict_proba_many`` of
    their own, for DataFrames: the scorer must not take it for ``predict_request``)."""
    from models.registry import MODELS

    scorer = Scorer.fresh(sorted(MODELS))
    vectors = [{"xitem_logit": -2.0, "xitem_rate": 0.1, "cand_position": float(i), "price": 3.0 + i} for i in range(3)]
    scored = scorer.score_one("u1", vectors)
    for name, live in scorer.models.items():
        one: Any = live.model
        assert scored.per_model[name] == [one.predict_proba_one(x).get(True, 0.0) for x in vectors]
