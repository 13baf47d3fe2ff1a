"""The input group lasso of the interaction model: covariates that carry nothing are dropped."""

import sys
from pathlib import Path

import numpy as np

from DELICAITELib.model import InteractionModel

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
from tian_simulation import simulate  # noqa: E402

SIGNAL = [f"x{j}" for j in range(1, 7)]  # g and h of the simulation use x1..x6 only


def _column_norms(model: InteractionModel, tower: str) -> np.ndarray:
    """Per input covariate, its weight norm in the tower (hidden layer and linear path) averaged over the members."""
    return np.mean([net.input_importance(tower).numpy() for net in model.networks_], axis=0)


def test_group_lasso_shrinks_the_noise_covariates_and_keeps_the_signal():
    sample = simulate(900, 30, h_form="nonlinear", seed=7)  # x7..x30 are pure noise
    therapy = np.where(sample.T > 0, "HAIC", "TACE")
    fixed = dict(n_ensemble=2, random_state=0, penalty_search=False, adaptive_inputs=0.0, weight_decay=1e-3)  # at a light L2
    lasso = InteractionModel(**fixed).fit(sample.X, therapy, sample.y)
    plain = InteractionModel(**fixed, input_penalty=0.0).fit(sample.X, therapy, sample.y)
    noise = ~np.isin(sample.X.columns, SIGNAL)
    column = {name: i for i, name in enumerate(sample.X.columns)}
    h_tower, g_tower = _column_norms(lasso, "interaction"), _column_norms(lasso, "main")
    # h = −0.4 + 0.7(x1² − 1) − 0.8 x3 + 0.8[x5 > 0]: its tower keeps x1 and x3, and drops the noise
    assert h_tower[noise].mean() < 0.25 * _column_norms(plain, "interaction")[noise].mean()
    assert min(h_tower[column["x1"]], h_tower[column["x3"]]) > 3 * h_tower[noise].mean()
    # g leans most on x4 (−0.5 x4 + 0.5(x4² − 1)); its tower shrinks the noise less but still clearly
    assert g_tower[noise].mean() < 0.75 * _column_norms(plain, "main")[noise].mean()
    assert g_tower[column["x4"]] > 1.5 * g_tower[noise].mean()


def test_a_model_file_from_before_the_group_lasso_reports_it_was_trained_without():
    """The demo model of DELICAITE 0.1, kept in Testing/data/legacy_models, predates the penalties."""
    from pathlib import Path

    from DELICAITELib.model import load_model

    demo = load_model(Path(__file__).resolve().parent / "data" / "legacy_models" / "interaction_model_v1")
    assert "input_penalty" not in demo.metadata_["hyperparameters"]
    assert demo.get_params()["input_penalty"] == 0.0
    assert demo.get_params()["adaptive_inputs"] == 0.0 and demo.get_params()["penalty_search"] is False
    assert demo.get_params()["penalty_pooling"] == "best"
