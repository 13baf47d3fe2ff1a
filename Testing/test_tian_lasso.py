"""Tian's modified-covariate lasso: the solver agrees with statsmodels, the estimator recovers a known
linear interaction on Tian-style trials (randomized and confounded), and it serves as a bundle's model."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import spearmanr

from DELICAITELib.bundle import load_bundle
from DELICAITELib.cli import main
from DELICAITELib.clinical import validate_record
from DELICAITELib.cohort import write_cohort
from DELICAITELib.demo import DEMO_CLINICAL, write_demo_inputs
from DELICAITELib.model import TianLasso, load_model, save_model
from DELICAITELib.model.lasso import lasso_logistic, lasso_path, largest_penalty
from DELICAITELib.simulate import simulate_cohort

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
from tian_simulation import simulate  # noqa: E402


def test_the_solver_gives_statsmodels_lasso():
    rng = np.random.default_rng(0)
    n, p = 500, 8
    x = np.column_stack([np.where(rng.random(n) < 0.5, 0.5, -0.5), rng.standard_normal((n, p))])
    offset, w = 0.4 * rng.standard_normal(n), rng.uniform(0.5, 2.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(offset + x @ np.r_[0.3, 1.0, -0.7, np.zeros(p - 2)])))).astype(float)
    for penalty in (0.002, 0.02):
        ours = lasso_logistic(x, y, w, offset, penalty)
        model = sm.GLM(y, x, family=sm.families.Binomial(), offset=offset, freq_weights=w * n / w.sum())
        theirs = model.fit_regularized(method="elastic_net", alpha=np.r_[0.0, np.full(p, penalty)], L1_wt=1.0,
                                       cnvrg_tol=1e-12, maxiter=1000).params
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    largest = largest_penalty(x, y, w, offset)
    at_largest = lasso_path(x, y, w, offset, [largest, largest / 10])
    assert np.allclose(at_largest[0][1:], 0, atol=1e-10) and np.any(np.abs(at_largest[1][1:]) > 1e-3)  # β leaves 0 there


@pytest.mark.parametrize("assignment", ["randomized", "confounded"])
def test_it_recovers_a_linear_interaction(assignment):
    train = simulate(2000, 10, h_form="linear", assignment=assignment, seed=11)
    test = simulate(4000, 10, h_form="linear", assignment=assignment, seed=12)
    model = TianLasso(propensity_weighting=assignment == "confounded", random_state=0).fit(train.X, train.therapy, train.y)
    h, lower, upper = model.interaction_score(test.X, return_interval=True)
    assert spearmanr(h, test.h).statistic > 0.9
    assert abs(np.mean(h - test.h)) < 0.15  # no systematic bias on the logit scale
    beta = dict(zip(train.X.columns, model.coef_[1:]))
    assert beta["x1"] > 0 and beta["x3"] < 0 and beta["x5"] > 0  # h = 0.2 + x1 − 0.8·x3 + 0.6·x5
    assert sum(abs(beta[f"x{j}"]) for j in (7, 8, 9, 10)) < 0.3 * abs(beta["x1"])  # noise stays (nearly) out
    assert np.all(lower <= h) and np.all(h <= upper)
    contributions = model.explain(test.X.iloc[:50])
    np.testing.assert_allclose(contributions.sum(axis=1) + contributions.attrs["baseline_h"], h[:50], atol=1e-10)


def test_saved_and_loaded_it_predicts_the_same(tmp_path):
    train = simulate(600, 12, h_form="linear", assignment="randomized", seed=3)
    model = TianLasso(n_bootstrap=10).fit(train.X, train.therapy, train.y)
    save_model(model, tmp_path / "m", note="test")
    again = load_model(tmp_path / "m")
    assert isinstance(again, TianLasso) and again.metadata_["note"] == "test"
    pd.testing.assert_frame_equal(again.predict_all(train.X), model.predict_all(train.X))


def test_delicaite_train_with_the_lasso_serves_a_case(tmp_path, capsys):
    write_cohort(simulate_cohort(n=300, seed=5), tmp_path / "cohort")
    assert main(["train", "--cohort", str(tmp_path / "cohort"), "--out", str(tmp_path / "model"),
                 "--estimator", "tian-lasso"]) == 0, capsys.readouterr().err
    bundle = load_bundle(tmp_path / "model")
    assert isinstance(bundle.model, TianLasso)
    assert json.loads((tmp_path / "model" / "training.json").read_text())["models"]["delicaite"]["kind"] == "tian-lasso"
    paths = write_demo_inputs(tmp_path / "case-inputs")
    assert main(["case", "--ap", str(paths["ap"]), "--vp", str(paths["vp"]), "--mask", str(paths["mask"]),
                 "--clinical", str(paths["clinical"]), "--model", str(tmp_path / "model"), "--out",
                 str(tmp_path / "case")]) == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "case" / "result.json").read_text())
    expected = bundle.predict_case(validate_record(DEMO_CLINICAL), {})
    assert result["interaction_score"]["h"] == pytest.approx(expected.score.h, abs=1e-12)
