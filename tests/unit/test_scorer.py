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
