import pickle

import pytest
from river import base

from models.baseline import GLOBAL, SmoothedCTR


def p_click(model: SmoothedCTR, x: dict) -> float:
    return model.predict_proba_one(x)[True]


def test_is_a_river_classifier_with_a_probability_per_label():
    model = SmoothedCTR()
    assert isinstance(model, base.Classifier)
    proba = model.predict_proba_one({"position": 1})
    assert set(proba) == {False, True}
    assert proba[True] == pytest.approx(0.05)  # no data: the prior mean
    assert proba[False] + proba[True] == pytest.approx(1.0)


def test_groups_by_the_key_with_the_beta_prior():
    model = SmoothedCTR(key="slot", prior_mean=0.2, prior_weight=5)
    for y in [True, False, False, False]:  # slot a: 1 click / 4
        model.learn_one({"slot": "a"}, y)
    for y in [True, True]:  # slot b: 2 / 2
        model.learn_one({"slot": "b"}, y)
    assert p_click(model, {"slot": "a"}) == pytest.approx((1 + 5 * 0.2) / (4 + 5))
    assert p_click(model, {"slot": "b"}) == pytest.approx((2 + 5 * 0.2) / (2 + 5))
    # missing key, None, NaN and unseen values: the global bucket (all 6 examples, 3 clicks)
    global_p = (3 + 5 * 0.2) / (6 + 5)
    xs: list[dict] = [{}, {"slot": None}, {"slot": float("nan")}, {"slot": "zzz"}, {"position": "a"}]
    for x in xs:
        assert p_click(model, x) == pytest.approx(global_p)


def test_missing_key_examples_only_count_in_the_global_bucket():
    model = SmoothedCTR(prior_mean=0.5, prior_weight=2)
    model.learn_one({"position": 1}, False)
    model.learn_one({}, True)
    assert p_click(model, {"position": 1}) == pytest.approx((0 + 1) / (1 + 2))
    assert p_click(model, {}) == pytest.approx((1 + 1) / (2 + 2))


def test_weights():
    model = SmoothedCTR(prior_mean=0.5, prior_weight=1)
    model.learn_one({"position": 1}, True, w=3.0)
    model.learn_one({"position": 1}, False, w=1.0)
    model.learn_one({"position": 1}, True, w=0.0)
    assert p_click(model, {"position": 1}) == pytest.approx((3 + 0.5) / (4 + 1))
    with pytest.raises(ValueError):
        model.learn_one({"position": 1}, True, w=-1.0)


def test_number_of_groups_is_bounded_and_overflow_counted():
    model = SmoothedCTR(max_groups=3)
    for i in range(10):
        model.learn_one({"position": i}, i % 2 == 0)
    groups = model.groups()
    assert list(groups) == [GLOBAL, 0, 1, 2]
    assert groups[GLOBAL][:2] == (5.0, 10.0)
    assert model.overflow == 7
    # a value beyond the cap predicts from the global bucket
    assert p_click(model, {"position": 9}) == pytest.approx(p_click(model, {}))


def test_predict_one_and_learning_moves_the_prediction():
    model = SmoothedCTR(prior_mean=0.1, prior_weight=1)
    assert model.predict_one({"position": 1}) is False
    for _ in range(5):
        model.learn_one({"position": 1}, True)
    assert model.predict_one({"position": 1}) is True


def test_pickles_and_clones_cleanly():
    model = SmoothedCTR(key="k", prior_mean=0.3, prior_weight=4, max_groups=2)
    for i, y in enumerate([True, False, True, True, False]):
        model.learn_one({"k": i % 3}, y)
    copy = pickle.loads(pickle.dumps(model))
    for x in [{"k": 0}, {"k": 1}, {"k": 2}, {}]:
        assert copy.predict_proba_one(x) == model.predict_proba_one(x)
    assert copy.groups() == model.groups() and copy.overflow == model.overflow
    fresh = model.clone()
    assert (fresh.key, fresh.prior_mean, fresh.prior_weight, fresh.max_groups) == ("k", 0.3, 4, 2)
    assert fresh.groups()[GLOBAL][:2] == (0.0, 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"prior_mean": 0.0}, {"prior_mean": 1.0}, {"prior_weight": 0}, {"prior_weight": float("inf")},
     {"max_groups": -1}, {"max_groups": 1.5}],
)
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        SmoothedCTR(**kwargs)
