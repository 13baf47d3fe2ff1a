"""The Tian-style simulation generator (Testing/benchmarks/tian_simulation.py) has the truth it claims,
and DELICAITE's interaction model recovers that truth on a moderate randomized trial.

Runs in the main venv: the generator and this file import neither econml nor causalml."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import expit, logit
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
from tian_simulation import PROPENSITY_CLIP, disease_control_rate, simulate  # noqa: E402

BIG = 200_000  # large enough that sampling error is a few tenths of a percent


def _close_to_mean(observed: np.ndarray, expected_p: np.ndarray, z: float = 4.0):
    """Mean of Bernoulli draws within z standard errors of the mean of their true probabilities."""
    se = np.sqrt(np.sum(expected_p * (1 - expected_p))) / len(expected_p)
    assert abs(observed.mean() - expected_p.mean()) < z * se


@pytest.mark.parametrize("assignment", ["randomized", "confounded"])
@pytest.mark.parametrize("h_form", ["linear", "nonlinear"])
def test_pd_rate_under_each_therapy_matches_true_probabilities(assignment, h_form):
    s = simulate(BIG, 10, h_form=h_form, assignment=assignment, seed=1)
    haic = s.T > 0
    _close_to_mean(s.y[haic], s.p_haic[haic])
    _close_to_mean(s.y[~haic], s.p_tace[~haic])
    # the model form: h is the logit difference, g the logit midpoint
    np.testing.assert_allclose(logit(s.p_haic) - logit(s.p_tace), s.h, atol=1e-8)
    np.testing.assert_allclose((logit(s.p_haic) + logit(s.p_tace)) / 2, s.g, atol=1e-8)
    np.testing.assert_allclose(s.cate, s.p_haic - s.p_tace)
    assert set(np.unique(s.therapy)) == {"TACE", "HAIC"}
    assert (s.therapy[haic] == "HAIC").all()


def test_covariates_have_ar1_correlation():
    s = simulate(BIG, 10, seed=2)
    corr = np.corrcoef(s.X.to_numpy(), rowvar=False)
    for lag in range(4):
        assert np.diag(corr, k=lag).mean() == pytest.approx(0.5**lag, abs=0.01)
    assert s.X.mean().abs().max() < 0.02
    assert list(s.X.columns) == [f"x{j}" for j in range(1, 11)]


def test_randomized_propensity_is_one_half():
    s = simulate(BIG, 10, assignment="randomized", seed=3)
    assert (s.propensity == 0.5).all()
    _close_to_mean((s.T > 0).astype(float), s.propensity)
    # randomisation: the therapy is independent of the covariates
    assert max(abs(np.corrcoef(s.X[c], s.T)[0, 1]) for c in s.X.columns) < 0.01


def test_confounded_propensity_depends_on_x_as_specified():
    s = simulate(BIG, 10, assignment="confounded", seed=4)
    x = s.X.to_numpy()
    np.testing.assert_allclose(s.propensity, np.clip(expit(0.8 * x[:, 0] - 0.8 * x[:, 1] + 0.4 * x[:, 5]), *PROPENSITY_CLIP))
    assert s.propensity.min() >= 0.05 and s.propensity.max() <= 0.95
    assert s.propensity.min() == 0.05 and s.propensity.max() == 0.95  # the clip is reached at this size
    # the share of HAIC follows the true propensity within each decile of it
    bins = np.quantile(s.propensity, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(bins, s.propensity, side="right") - 1, 0, 9)
    for b in range(10):
        rows = which == b
        _close_to_mean((s.T[rows] > 0).astype(float), s.propensity[rows])
    # HAIC goes more often to high x1 (an effect modifier) and to low x2 (a prognostic covariate)
    assert np.corrcoef(s.X["x1"], s.T)[0, 1] > 0.1
    assert np.corrcoef(s.X["x2"], s.T)[0, 1] < -0.1


@pytest.mark.parametrize("h_form", ["linear", "nonlinear"])
def test_oracle_rule_beats_either_single_therapy(h_form):
    s = simulate(BIG, 10, h_form=h_form, seed=5)
    share_haic_best = s.oracle_haic.mean()
    assert 0.2 < share_haic_best < 0.8  # a real choice for many patients, not one therapy for all
    oracle = disease_control_rate(s, s.oracle_haic)
    all_tace = disease_control_rate(s, np.zeros(BIG, bool))
    all_haic = disease_control_rate(s, np.ones(BIG, bool))
    assert oracle > max(all_tace, all_haic) + 0.02
    # the oracle is the best rule: any other (here: its opposite) does worse
    assert disease_control_rate(s, ~s.oracle_haic) < min(all_tace, all_haic)


def test_same_seed_same_sample_and_bad_arguments_rejected():
    a, b = simulate(50, 12, seed=7), simulate(50, 12, seed=7)
    np.testing.assert_array_equal(a.X.to_numpy(), b.X.to_numpy())
    np.testing.assert_array_equal(a.y, b.y)
    with pytest.raises(ValueError, match="p must be at least 6"):
        simulate(10, 5)
    with pytest.raises(ValueError, match="h_form"):
        simulate(10, 10, h_form="quadratic")
    with pytest.raises(ValueError, match="assignment"):
        simulate(10, 10, assignment="observational")


def test_interaction_model_recovers_h_on_a_randomized_trial():
    from DELICAITELib.model import InteractionModel

    train = simulate(900, 10, h_form="linear", assignment="randomized", seed=11)
    test = simulate(2000, 10, h_form="linear", assignment="randomized", seed=12)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: one thread is as fast and does not stall when the cores are busy
    try:
        model = InteractionModel(random_state=0).fit(train.X, train.therapy, train.y)  # default hyper-parameters
    finally:
        torch.set_num_threads(threads)
    h_hat = model.interaction_score(test.X)
    assert spearmanr(h_hat, test.h)[0] > 0.6
    assert np.mean((h_hat < 0) == test.oracle_haic) > 0.7
