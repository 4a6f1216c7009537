import pytest

from models.metrics import ProgressiveMetrics
from models.tripwire import Tripwire, TripwireState


def recent(n, **values):
    return {"n": n, "logloss": None, "auc": None, **values}


def test_logloss_alerts_when_prod_is_not_better_by_the_margin():
    tripwire = Tripwire(margin=0.02, min_count=100)
    base = recent(500, logloss=0.40)
    assert tripwire.check(recent(500, logloss=0.37), base).alert is False  # better by 0.03
    state = tripwire.check(recent(500, logloss=0.39), base)  # better by 0.01 only
    assert state == TripwireState(True, state.reason, 0.39, 0.40)
    assert "worse than the baseline" in state.reason
    assert tripwire.check(recent(500, logloss=0.45), base).alert is True


def test_better_by_exactly_the_margin_does_not_alert():
    tripwire = Tripwire(margin=0.25, min_count=1)  # binary fractions: exact arithmetic
    assert tripwire.check(recent(5, logloss=0.75), recent(5, logloss=1.0)).alert is False
    assert tripwire.check(recent(5, logloss=0.875), recent(5, logloss=1.0)).alert is True
    auc = Tripwire(margin=0.25, min_count=1, metric="auc")
    assert auc.check(recent(5, auc=0.75), recent(5, auc=0.5)).alert is False
    assert auc.check(recent(5, auc=0.625), recent(5, auc=0.5)).alert is True


def test_zero_margin_and_negative_margin():
    base = recent(500, logloss=0.40)
    assert Tripwire(min_count=1).check(recent(500, logloss=0.40), base).alert is False  # equal: not worse
    assert Tripwire(min_count=1).check(recent(500, logloss=0.41), base).alert is True
    assert Tripwire(margin=-0.05, min_count=1).check(recent(500, logloss=0.44), base).alert is False


def test_auc_alerts_when_prod_is_below_baseline_plus_margin():
    tripwire = Tripwire(margin=0.01, min_count=100, metric="auc")
    base = recent(300, auc=0.70)
    assert tripwire.check(recent(300, auc=0.72), base).alert is False
    state = tripwire.check(recent(300, auc=0.705), base)
    assert state.alert is True and (state.prod, state.baseline) == (0.705, 0.70)


def test_not_enough_data_never_alerts():
    tripwire = Tripwire(min_count=200)
    for prod_n, base_n in [(199, 500), (500, 199), (0, 0)]:
        state = tripwire.check(recent(prod_n, logloss=9.0), recent(base_n, logloss=0.1))
        assert state.alert is False
        assert "not enough data" in state.reason and "200" in state.reason
    assert tripwire.check(recent(200, logloss=9.0), recent(200, logloss=0.1)).alert is True


def test_undefined_metric_does_not_alert():
    state = Tripwire(metric="auc", min_count=1).check(recent(10, auc=None), recent(10, auc=0.6))
    assert state.alert is False and "undefined for prod" in state.reason


def test_uses_the_recent_window_of_full_reports():
    prod, base = ProgressiveMetrics(window=4), ProgressiveMetrics(window=4)
    # prod was good for a long time, then became bad: the cumulative is fine, the recent window is not
    for _ in range(50):
        prod.update_one(True, 0.9)
        prod.update_one(False, 0.1)
    for _ in range(2):
        prod.update_one(True, 0.1)
        prod.update_one(False, 0.9)
    for _ in range(52):
        base.update_one(True, 0.5)
        base.update_one(False, 0.5)
    prod_report, base_report = prod.report(), base.report()
    assert prod_report["cumulative"]["logloss"] < base_report["cumulative"]["logloss"]
    state = Tripwire(min_count=4).check(prod_report, base_report)
    assert state.alert is True
    assert state.prod == prod_report["recent"]["logloss"]
    assert state.baseline == base_report["recent"]["logloss"]


@pytest.mark.parametrize(
    "kwargs",
    [{"metric": "accuracy"}, {"min_count": 0}, {"min_count": 2.5}, {"margin": float("nan")}],
)
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        Tripwire(**kwargs)
