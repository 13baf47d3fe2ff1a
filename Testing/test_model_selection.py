"""weight_decay="auto": the interaction model picks its weight decay on held-out training patients."""

import numpy as np
import pytest

from DELICAITELib.clinical import encode
from DELICAITELib.model import InteractionModel, load_model, save_model
from DELICAITELib.model.selection import VALIDATION_SHARE, WEIGHT_DECAY_GRID, validation_split
from DELICAITELib.simulate import simulate_cohort


def test_validation_split_is_stratified_and_disjoint():
    rng = np.random.default_rng(0)
    t = np.where(rng.random(400) < 0.3, 1.0, -1.0)
    y = (rng.random(400) < 0.6).astype(float)
    fit_rows, held = validation_split(t, y, seed=5)
    assert len(np.intersect1d(fit_rows, held)) == 0 and len(fit_rows) + len(held) == 400
    for a in (-1.0, 1.0):
        for b in (0.0, 1.0):
            stratum = np.flatnonzero((t == a) & (y == b))
            assert np.isin(stratum, held).sum() == round(VALIDATION_SHARE * len(stratum))
    assert np.array_equal(validation_split(t, y, seed=5)[1], held)  # seeded


@pytest.fixture(scope="module")
def auto_model():
    cohort = simulate_cohort(400, seed=4)
    x = encode(cohort.covariates)
    model = InteractionModel(weight_decay="auto", n_ensemble=2, epochs=120, propensity_weighting=True,
                             random_state=1).fit(x, cohort.therapy, cohort.pd)
    return model, x


def test_auto_weight_decay_is_the_grid_value_with_the_lowest_held_out_loss(auto_model):
    model, _ = auto_model
    losses = model.training_summary_["weight_decay_validation_log_loss"]
    assert sorted(float(k) for k in losses) == sorted(WEIGHT_DECAY_GRID)
    assert all(np.isfinite(v) and v > 0 for v in losses.values())
    assert model.weight_decay_ == float(min(losses, key=losses.get))
    assert model.training_summary_["weight_decay"] == model.weight_decay_


def test_auto_model_saves_and_loads(auto_model, tmp_path):
    model, x = auto_model
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.get_params()["weight_decay"] == "auto"
    assert loaded.training_summary_["weight_decay"] == model.weight_decay_
    assert np.allclose(loaded.interaction_score(x), model.interaction_score(x), atol=1e-5)


def test_fixed_weight_decay_skips_the_choice():
    cohort = simulate_cohort(200, seed=2)
    model = InteractionModel(weight_decay=3e-2, n_ensemble=1, epochs=50).fit(encode(cohort.covariates),
                                                                              cohort.therapy, cohort.pd)
    assert model.weight_decay_ == 3e-2 and model.training_summary_["weight_decay_validation_log_loss"] == {}
