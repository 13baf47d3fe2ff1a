"""penalty_search: the interaction model chooses the penalties of h's tower on its out-of-bag patients."""

import numpy as np
import pytest
import torch

from DELICAITELib.clinical import encode
from DELICAITELib.errors import DelicaiteError
from DELICAITELib.model import InteractionModel, load_model, save_model
from DELICAITELib.model.network import InteractionNet
from DELICAITELib.model.selection import (INTERACTION_GRID, out_of_bag_effects, out_of_bag_log_loss,
                                          within_one_standard_error)
from DELICAITELib.simulate import simulate_cohort


def test_out_of_bag_effects_average_only_the_members_that_left_a_patient_out():
    torch.manual_seed(0)
    nets = [InteractionNet(4, 8, 0.0).eval() for _ in range(3)]
    xs = np.random.default_rng(1).normal(size=(6, 4))
    rows = [np.array([0, 0, 1, 2, 3, 5]), np.array([1, 2, 3, 4, 5, 5]), np.array([0, 1, 2, 3, 4, 5])]
    g, h, seen = out_of_bag_effects(nets, rows, xs)
    with torch.no_grad():
        member = [tuple(a.numpy() for a in net.effects(torch.as_tensor(xs, dtype=torch.float32))) for net in nets]
    # patient 4 is out of member 0 only, patient 0 out of member 1 only; no member left out patients 1, 2, 3, 5
    assert seen.tolist() == [True, False, False, False, True, False]
    assert np.isclose(g[4], member[0][0][4]) and np.isclose(h[4], member[0][1][4])
    assert np.isclose(g[0], member[1][0][0]) and np.isclose(h[0], member[1][1][0])
    with pytest.raises(ValueError, match="out of bag"):
        out_of_bag_effects(nets, [np.arange(6)] * 3, xs)


def test_out_of_bag_log_loss_scores_only_the_patients_left_out():
    torch.manual_seed(2)
    net = InteractionNet(3, 8, 0.0).eval()
    rng = np.random.default_rng(3)
    xs, t = rng.normal(size=(300, 3)), np.where(rng.random(300) < 0.5, 1.0, -1.0)
    y, w = (rng.random(300) < 0.4).astype(float), rng.uniform(0.5, 2.0, 300)
    with torch.no_grad():
        logit = net(torch.as_tensor(xs, dtype=torch.float32), torch.as_tensor(t, dtype=torch.float32))[0].numpy()
    p = 1.0 / (1.0 + np.exp(-logit[100:]))
    expected = -np.sum(w[100:] * (y[100:] * np.log(p) + (1 - y[100:]) * np.log(1 - p))) / w[100:].sum()
    assert np.isclose(out_of_bag_log_loss([net], [np.arange(100)], xs, t, y, w), expected, rtol=1e-5)


@pytest.fixture(scope="module")
def searched_model():
    cohort = simulate_cohort(400, seed=4)
    x = encode(cohort.covariates)
    model = InteractionModel(penalty_search=True, weight_decay=2e-3, input_penalty=4e-3, n_ensemble=3, epochs=100,
                             propensity_weighting=True, random_state=1).fit(x, cohort.therapy, cohort.pd)
    return model, x


def test_search_keeps_the_lowest_out_of_bag_loss_and_g_as_given(searched_model):
    model, _ = searched_model
    losses = model.training_summary_["penalty_out_of_bag_log_loss"]
    # each grid point once as given and once refitted with adaptive input weights from its own ensemble
    assert list(losses) == [f"decay={d:g},inputs={i:g}{a}" for d, i in INTERACTION_GRID for a in ("", ",adaptive")]
    assert all(np.isfinite(v) and v > 0 for v in losses.values())
    chosen = model.penalties_
    assert (chosen.main_decay, chosen.main_inputs) == (2e-3, 4e-3)  # g's penalties are not searched
    best = min(losses, key=losses.get)
    adaptive = ",adaptive" if chosen.interaction_input_weights is not None else ""
    assert best == f"decay={chosen.interaction_decay:g},inputs={chosen.interaction_inputs:g}{adaptive}"
    assert model.training_summary_["penalties"] == chosen.as_dict()
    pooled = model.training_summary_["penalties_pooled"]
    assert best in pooled and set(pooled) <= set(losses)
    assert len(model.networks_) == 3 * len(pooled)  # n_ensemble members from each pooled candidate


def test_searched_model_saves_and_loads(searched_model, tmp_path):
    model, x = searched_model
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.get_params()["penalty_search"] is True
    assert loaded.training_summary_["penalties"] == model.penalties_.as_dict()
    assert np.allclose(loaded.interaction_score(x), model.interaction_score(x), atol=1e-5)


def test_given_penalties_are_used_as_set_without_search():
    cohort = simulate_cohort(200, seed=2)
    x = encode(cohort.covariates)
    same = InteractionModel(penalty_search=False, adaptive_inputs=0.0, weight_decay=3e-2, input_penalty=1e-3,
                            n_ensemble=1, epochs=40).fit(x, cohort.therapy, cohort.pd)
    assert same.penalties_.as_dict() == {"main_decay": 3e-2, "main_inputs": 1e-3,
                                         "interaction_decay": 3e-2, "interaction_inputs": 1e-3,
                                         "main_input_weights": None, "interaction_input_weights": None}
    assert same.training_summary_["penalty_out_of_bag_log_loss"] == {}
    apart = InteractionModel(penalty_search=False, adaptive_inputs=0.0, weight_decay=3e-2, interaction_weight_decay=1e-4,
                             interaction_input_penalty=0.0, n_ensemble=1, epochs=40).fit(x, cohort.therapy, cohort.pd)
    assert (apart.penalties_.interaction_decay, apart.penalties_.interaction_inputs) == (1e-4, 0.0)


def test_search_without_bootstrap_says_what_to_change():
    cohort = simulate_cohort(120, seed=3)
    with pytest.raises(DelicaiteError, match="bootstrap=True"):
        InteractionModel(penalty_search=True, bootstrap=False, n_ensemble=1, epochs=5).fit(
            encode(cohort.covariates), cohort.therapy, cohort.pd)


def test_one_standard_error_rule_pools_only_what_the_patients_cannot_tell_apart():
    rng = np.random.default_rng(5)
    best = rng.uniform(0.3, 1.0, 400)
    weights = np.ones(400)
    candidates = {
        "best": (best, weights),
        "tied": (best + rng.normal(0.0, 0.05, 400), weights),  # mean difference ≈ 0, well inside 1 SE
        "worse": (best + 0.05 + rng.normal(0.0, 0.05, 400), weights),  # 0.05 ≫ SE ≈ 0.0025
    }
    assert within_one_standard_error(candidates, "best") == ["best", "tied"]
    # the same computation by hand for "tied"
    diff = candidates["tied"][0] - best
    assert (diff.mean() <= diff.std(ddof=0) / np.sqrt(400)) == ("tied" in within_one_standard_error(candidates, "best"))


def test_unknown_pooling_says_what_is_allowed():
    cohort = simulate_cohort(120, seed=3)
    with pytest.raises(DelicaiteError, match="one_se, best"):
        InteractionModel(penalty_pooling="mean", n_ensemble=1, epochs=5).fit(encode(cohort.covariates), cohort.therapy, cohort.pd)
