"""The adaptive group lasso refit: input weights from a first ensemble, noise covariates penalised more."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from DELICAITELib.model import InteractionModel, load_model, save_model
from DELICAITELib.model.adaptive import adaptive_penalties, input_weights
from DELICAITELib.model.network import InteractionNet
from DELICAITELib.model.training import Penalties

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
from tian_simulation import simulate  # noqa: E402


def _net_with_input_norms(norms, tower="interaction") -> InteractionNet:
    """A network whose first layer in ``tower`` has column j of L2 norm norms[j]."""
    net = InteractionNet(len(norms), 4, 0.0)
    with torch.no_grad():
        weight = torch.zeros(4, len(norms))
        weight[0] = torch.as_tensor(norms, dtype=torch.float32)
        getattr(net, tower)[0].weight.copy_(weight)
    return net


def test_weights_are_the_largest_importance_over_each_one_averaged_over_members():
    nets = [_net_with_input_norms([2.0, 1.0, 0.5]), _net_with_input_norms([2.0, 3.0, 0.5])]  # means 2, 2, 0.5
    assert input_weights(nets, "interaction", 1.0) == pytest.approx((1.0, 1.0, 4.0))
    assert input_weights(nets, "interaction", 2.0) == pytest.approx((1.0, 1.0, 16.0))
    unused = input_weights([_net_with_input_norms([1.0, 0.0])], "interaction", 1.0)
    assert unused[0] == 1.0 and unused[1] == pytest.approx(1e6)  # bounded, not infinite
    assert input_weights([_net_with_input_norms([0.0, 0.0])], "interaction", 1.0) == (1.0, 1.0)


def test_weighted_group_lasso_enters_the_loss_as_weights_times_column_norms():
    net = _net_with_input_norms([2.0, 1.0, 0.5])
    plain = Penalties(0.0, 0.0, 0.0, 0.1)
    weighted = adaptive_penalties(plain, [net], 1.0)
    assert weighted.interaction_input_weights == pytest.approx((1.0, 2.0, 4.0))
    assert float(plain.term(net).detach()) == pytest.approx(0.1 * (2.0 + 1.0 + 0.5))
    assert float(weighted.term(net).detach()) == pytest.approx(0.1 * (2.0 * 1 + 1.0 * 2 + 0.5 * 4), rel=1e-5)


@pytest.fixture(scope="module")
def fitted_pair():
    sample = simulate(900, 30, h_form="linear", seed=11)  # h uses x1, x3, x5; x7..x30 are pure noise
    therapy = np.where(sample.T > 0, "HAIC", "TACE")
    fixed = dict(n_ensemble=2, random_state=0, penalty_search=False, weight_decay=1e-3)  # the mechanism at a light L2
    plain = InteractionModel(**fixed, adaptive_inputs=0.0).fit(sample.X, therapy, sample.y)
    adaptive = InteractionModel(**fixed, adaptive_inputs=1.0).fit(sample.X, therapy, sample.y)
    return sample, plain, adaptive


def _h_norms(model) -> np.ndarray:
    return np.mean([net.input_importance("interaction").numpy() for net in model.networks_], axis=0)


def test_refit_drops_noise_covariates_from_h_and_keeps_the_modifiers(fitted_pair):
    sample, plain, adaptive = fitted_pair
    noise = np.arange(sample.X.shape[1]) >= 6
    modifiers = [0, 2, 4]  # x1, x3, x5

    def noise_share(model):
        norms = _h_norms(model)
        return norms[noise].sum() / norms.sum()

    # measured: 0.71 → 0.46 with the towers' linear paths (0.69 → 0.33 without them), separation 1.6 → 6.7
    assert noise_share(adaptive) < 0.7 * noise_share(plain)
    def separation(model):  # the weakest modifier over the mean noise covariate
        norms = _h_norms(model)
        return norms[modifiers].min() / norms[noise].mean()

    assert separation(adaptive) > 5 and separation(adaptive) > 2 * separation(plain)
    weights = np.asarray(adaptive.penalties_.interaction_input_weights)
    # measured: the median noise weight 3.1, the modifiers' at most 1.7
    assert weights.min() == pytest.approx(1.0) and np.median(weights[noise]) > 1.5 * weights[modifiers].max()
    test = simulate(2000, 30, h_form="linear", seed=12)
    from scipy.stats import spearmanr
    assert spearmanr(adaptive.interaction_score(test.X), test.h)[0] > 0.85


def test_adaptive_model_saves_its_weights_and_reloads(fitted_pair, tmp_path):
    sample, _, adaptive = fitted_pair
    save_model(adaptive, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.get_params()["adaptive_inputs"] == 1.0
    assert loaded.training_summary_["penalties"]["interaction_input_weights"] == pytest.approx(
        list(adaptive.penalties_.interaction_input_weights))
    assert np.allclose(loaded.interaction_score(sample.X), adaptive.interaction_score(sample.X), atol=1e-5)


def test_screen_weights_favour_the_covariates_that_carry_the_outcome():
    from DELICAITELib.model.adaptive import screen_weights

    rng = np.random.default_rng(0)
    xs = rng.normal(size=(400, 8))
    t = np.where(rng.random(400) < 0.5, 1.0, -1.0)
    logit = 1.5 * xs[:, 0] + 1.5 * t * xs[:, 1]  # x1 main effect, x2 interaction, the rest noise
    y = (rng.random(400) < 1.0 / (1.0 + np.exp(-logit))).astype(float)
    weights = np.array(screen_weights(xs, t, y, np.ones(400), 1.0, seed=0))
    assert weights.min() == 1.0 and (weights >= 1.0).all()
    assert max(weights[0], weights[1]) < weights[2:].min()


def test_the_tree_pilot_starts_the_search_only_with_few_patients_per_covariate():
    from DELICAITELib.model.interaction import SCREEN_PATIENTS_PER_COVARIATE

    rng = np.random.default_rng(1)
    p = 20
    n = SCREEN_PATIENTS_PER_COVARIATE * p - 40  # 8 patients per covariate
    x = rng.normal(size=(n, p))
    therapy = np.where(rng.random(n) < 0.5, "HAIC", "TACE")
    t = np.where(therapy == "HAIC", 1.0, -1.0)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(x[:, 0] + t * x[:, 1])))).astype(int)
    options = dict(n_ensemble=2, epochs=30, random_state=0)
    few = InteractionModel(**options).fit(x, therapy, y)
    assert all(",screened" in label for label in few.penalty_validation_ if not label.endswith(",adaptive")) \
        and any(label.endswith(",screened") for label in few.penalty_validation_)
    weights = np.array(few.penalties_.interaction_input_weights)
    assert weights.shape == (p,) and weights.min() == 1.0
    # the same cohort with its covariates cut to 10: enough patients per covariate, no pilot
    many = InteractionModel(**options).fit(x[:, :10], therapy, y)
    assert not any("screened" in label for label in many.penalty_validation_)
    # and input_screen=False turns it off
    unscreened = InteractionModel(input_screen=False, **options).fit(x, therapy, y)
    assert not any("screened" in label for label in unscreened.penalty_validation_)
