import pytest

from models.arms import unit_hash
from models.experiment import experiment_from_settings, model_names, scorer_from_settings
from streams.settings import Settings, SettingsError


def test_parses_arms_with_spaces_and_keeps_their_order():
    settings = Settings(models="prod, baseline", arms=" A : prod : 0.25 , B:baseline:0.75 ", experiment_salt="s")
    experiment = experiment_from_settings(settings)
    assert experiment.salt == "s"
    assert [(a.name, a.model, a.share) for a in experiment.arms] == [("A", "prod", 0.25), ("B", "baseline", 0.75)]


def test_defaults_give_one_arm_serving_prod():
    experiment = experiment_from_settings(Settings())
    assert [(a.name, a.model, a.share) for a in experiment.arms] == [("A", "prod", 1.0)]


def test_users_go_to_the_arm_of_their_hash_slice():
    settings = Settings(arms="A:prod:0.5,B:baseline:0.5", experiment_salt="exp-1")
    experiment = experiment_from_settings(settings)
    assert unit_hash("exp-1", "u5") == pytest.approx(0.4888, abs=1e-4)  # below 0.5: A
    assert unit_hash("exp-1", "u3") == pytest.approx(0.5131, abs=1e-4)  # above 0.5: B
    assert experiment.assign("u5").name == "A"
    assert experiment.assign("u3").name == "B"
    scorer = scorer_from_settings(settings)
    assert scorer.assign("u5") == ("A", "prod")
    assert scorer.assign("u3") == ("B", "baseline")


def test_scorer_has_a_fresh_model_for_every_listed_name():
    scorer = scorer_from_settings(Settings(models="baseline,prod", arms="A:prod:1"))
    assert list(scorer.models) == ["baseline", "prod"]
    assert scorer.versions == {"baseline": 0, "prod": 0}
    out = scorer.score_one("u1", [{"cand_position": 0.0}])
    # untrained: the logistic regression says 0.5, the baseline its prior mean 0.1
    assert out.per_model == {"baseline": [pytest.approx(0.1)], "prod": [0.5]}
    assert (out.arm, out.model, out.served) == ("A", "prod", [0.5])


@pytest.mark.parametrize(
    ("arms", "problem"),
    [
        ("A:prod", "arm 'A:prod' is not name:model:share"),
        ("A:prod:0.5:x", "is not name:model:share"),
        ("A::1", "is not name:model:share"),
        ("", "no arms"),
        ("A:prod:half", "arm 'A': the share 'half' is not a number"),
        ("A:prod:0,B:baseline:1", "arm 'A': the share must be a number > 0, got '0'"),
        ("A:prod:nan", "the share must be a number > 0"),
        ("A:gbm:1",
         "arm 'A' serves unknown model 'gbm'; declared: baseline, inverted, item_rate, position_ctr, prod, prod_lr"),
        ("A:prod:0.5,B:prod:0.4", "arm shares must sum to 1, got 0.9 (A=0.5, B=0.4)"),
        ("A:prod:0.5,A:prod:0.5", "arm names must be unique, repeated: ['A']"),
    ],
)
def test_bad_arms_name_the_variable_and_the_problem(arms, problem):
    with pytest.raises(SettingsError) as info:
        experiment_from_settings(Settings(models="prod,baseline", arms=arms))
    message = str(info.value)
    assert message.startswith(f"STREAMSCORE_ARMS={arms!r} is not valid: ")
    assert problem in message
    assert isinstance(info.value, ValueError)


def test_an_arm_may_only_serve_a_model_that_scores_every_request():
    problem = r"arm 'B' serves model 'baseline', which is not in STREAMSCORE_MODELS='prod'"
    with pytest.raises(SettingsError, match=problem):
        experiment_from_settings(Settings(models="prod", arms="A:prod:0.5,B:baseline:0.5"))


@pytest.mark.parametrize(
    ("models", "problem"),
    [
        ("prod,gbm", "unknown model 'gbm'; declared: baseline, inverted, item_rate, position_ctr, prod, prod_lr"),
        ("prod,,baseline", "an empty model name"),
        (" ", "expected at least one model name"),
        ("prod,prod", "models listed more than once: ['prod']"),
    ],
)
def test_bad_models_name_the_variable(models, problem):
    with pytest.raises(SettingsError) as info:
        model_names(Settings(models=models))
    assert str(info.value).startswith(f"STREAMSCORE_MODELS={models!r} is not valid: ")
    assert problem in str(info.value)
    with pytest.raises(SettingsError, match="STREAMSCORE_MODELS"):
        scorer_from_settings(Settings(models=models))
