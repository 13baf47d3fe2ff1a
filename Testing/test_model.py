"""The interaction model: recovery of a known h(x), propensity weighting, the recommendation rule,
uncertainty, explanations, and model files that refuse tampering."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import logit
from scipy.stats import spearmanr
from sklearn.base import clone

from DELICAITELib.errors import DelicaiteError, ModelFileError
from DELICAITELib.model import NO_PREFERENCE, InteractionModel, load_model, save_model


def make_data(n, seed, p=8, confounded=False):
    """Covariates N(0, I); truth logit P(PD|x,T) = g(x) + T·h(x)/2 with a nonlinear g and h.

    Only f0, f2, f3 enter h; f1 enters g (and, when confounded, the therapy choice together with f0, f2).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    g = -0.3 + 0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.4 * x[:, 2] * x[:, 3]
    h = 1.5 * x[:, 0] - 1.0 * x[:, 2] + 0.8 * np.tanh(2 * x[:, 3]) + 0.2
    p_haic = 1 / (1 + np.exp(-(1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.6 * x[:, 2]))) if confounded else np.full(n, 0.5)
    t = np.where(rng.random(n) < p_haic, 1.0, -1.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-(g + t * h / 2)))).astype(int)
    X = pd.DataFrame(x, columns=[f"f{i}" for i in range(p)])
    return X, np.where(t > 0, "HAIC", "TACE"), y, h


def recovery(model, X_test, h_test):
    """(Spearman of h_hat with h_true, agreement of the recommendation with the oracle's) on held-out rows."""
    h_hat = model.interaction_score(X_test)
    oracle = np.where(h_test < 0, "HAIC", "TACE")
    return spearmanr(h_hat, h_test)[0], np.mean(np.where(h_hat < 0, "HAIC", "TACE") == oracle)


@pytest.fixture(scope="module")
def held_out():
    X, _, _, h = make_data(2000, seed=99)
    return X, h


@pytest.fixture(scope="module")
def fitted():
    """A small model on 800 randomized patients (shared by the tests that need any fitted model)."""
    X, therapy, y, h = make_data(800, seed=0)
    return InteractionModel(n_ensemble=3, random_state=0).fit(X, therapy, y)


# ------------------------------------------------------------------------------------------- recovery

def test_recovers_known_h_with_randomized_therapy(fitted, held_out):
    rho, agree = recovery(fitted, *held_out)
    # observed over 6 seeds: Spearman 0.92-0.96, agreement 0.86-0.92
    assert rho > 0.8
    assert agree > 0.8
    # h is not shifted and HAIC is not over-recommended (the audit of issue 14: bias -0.5 to -0.9 with g
    # overfit). Measured on training seeds 0/1/2: bias -0.04/+0.16/-0.12, HAIC share 0.42/0.42/0.49 vs 0.46
    X_test, h_test = held_out
    h_hat = fitted.interaction_score(X_test)
    assert abs(np.mean(h_hat - h_test)) < 0.3
    assert abs(np.mean(h_hat < 0) - np.mean(h_test < 0)) < 0.08
    # the explanation points at the covariates that really enter h (f0, f2, f3), not at the noise
    importance = fitted.explain(held_out[0].iloc[:300]).abs().mean()
    assert set(importance.nlargest(3).index) == {"f0", "f2", "f3"}


def test_propensity_weighting_under_confounding(held_out):
    """Honest finding on this generator: the flexible g tower already absorbs the confounding, so the
    weights mostly add variance (6 seeds: Spearman 0.956 without vs 0.924 with weighting, agreement
    0.894 vs 0.876). We require weighting to stay close and to keep recovering h."""
    X, therapy, y, _ = make_data(800, seed=1, confounded=True)
    plain = InteractionModel(n_ensemble=3, random_state=1).fit(X, therapy, y)
    weighted = InteractionModel(n_ensemble=3, random_state=1, propensity_weighting=True).fit(X, therapy, y)
    rho_plain, agree_plain = recovery(plain, *held_out)
    rho_w, agree_w = recovery(weighted, *held_out)
    assert rho_w > 0.8 and agree_w > 0.8
    assert rho_w > rho_plain - 0.08
    assert agree_w > agree_plain - 0.05
    # the stored propensity model found the physician's rule: f0 pushes towards HAIC, f1 away from it
    coef = weighted.propensity_coef_
    assert coef[0] > 0.5 and coef[1] < -0.3 and np.abs(coef[4:]).max() < 0.3
    assert plain.propensity_coef_ is None


def test_propensity_penalty_is_chosen_by_cross_validation():
    """With 300 patients and 50 covariates of which one drives the choice, a fixed C = 1 (the old fit)
    lets noise into the propensity and so into the weights; the cross-validated penalty keeps the noise
    coefficients small, the weights steadier and the real driver in."""
    from sklearn.linear_model import LogisticRegression

    from DELICAITELib.model.propensity import fit_propensity, propensity_haic, stabilised_weights

    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 50))
    t = np.where(rng.random(300) < 1 / (1 + np.exp(-0.8 * x[:, 0])), 1.0, -1.0)
    coef, intercept = fit_propensity(x, t)
    fixed = LogisticRegression(C=1.0, max_iter=2000).fit(x, t > 0)
    # measured: driver 0.20 (C = 1: 0.63), largest noise coefficient 0.13 (C = 1: 0.39), weight SD 0.17 (0.82)
    assert coef[0] > np.abs(coef[1:]).max()  # the physician's covariate is kept, and first
    assert np.abs(coef[1:]).max() < 0.5 * np.abs(fixed.coef_[0, 1:]).max()
    weights = stabilised_weights(t, propensity_haic(x, coef, intercept))
    fixed_weights = stabilised_weights(t, propensity_haic(x, fixed.coef_[0], fixed.intercept_[0]))
    assert weights.std() < 0.5 * fixed_weights.std()
    # a therapy given to two patients only cannot be cross-validated: a plain fit, no error
    rare = np.where(np.arange(300) < 2, 1.0, -1.0)
    assert np.isfinite(fit_propensity(x, rare)[1])


def test_simulated_cohort_physician_assignment():
    """900 simulated patients (physician choice), default ensemble with propensity weighting, judged on
    2000 fresh patients. Observed for training seeds 0/1/2: Spearman 0.87/0.81/0.93, oracle agreement
    0.88/0.86/0.82 (without weighting 0.89/0.83/0.91 and 0.88/0.86/0.81); training 1.3-2.3 s on 2 shared
    CPU cores."""
    from DELICAITELib import simulate
    from DELICAITELib.clinical import encode

    train = simulate.simulate_cohort(n=900, seed=0, assignment="physician")
    test = simulate.simulate_cohort(n=2000, seed=1001, assignment="physician")
    X_train, X_test = encode(train.covariates), encode(test.covariates)
    assert np.allclose(simulate.true_h_function(test.covariates), test.true_h)

    model = InteractionModel(propensity_weighting=True, random_state=0).fit(X_train, train.therapy, train.pd)

    rho, agree = recovery(model, X_test, test.true_h)
    assert rho > 0.75, rho
    assert agree > 0.75, agree
    # bias of h and HAIC share beside the truth (0.86 here). Measured for training seeds 0/1: bias +0.38/+0.05,
    # share 0.79/0.86; the model of the audit had -0.69 and recommended HAIC too often
    h_hat = model.interaction_score(X_test)
    assert -0.3 < np.mean(h_hat - test.true_h) < 0.6
    assert abs(np.mean(h_hat < 0) - np.mean(test.true_h < 0)) < 0.1
    assert np.mean(model.recommend(X_test) == test.oracle_best) > 0.75

    plain = InteractionModel(random_state=0).fit(X_train, train.therapy, train.pd)
    rho_plain, agree_plain = recovery(plain, X_test, test.true_h)
    assert rho > rho_plain - 0.05 and agree > agree_plain - 0.05

    summary = model.training_summary_
    assert summary["n"] == 900 and summary["n_tace"] + summary["n_haic"] == 900
    assert summary["pd_rate_tace"] > summary["pd_rate_haic"]  # as the simulation's docstring says


# ------------------------------------------------------------------------------ outputs and the rule

def test_risks_scores_and_recommendation_agree(fitted, held_out):
    X = held_out[0].iloc[:200]
    risks = fitted.predict_risks(X)
    assert list(risks.columns) == ["p_pd_tace", "p_pd_haic"] and (risks.index == X.index).all()
    h = fitted.interaction_score(X)
    # the contract: h = logit P(PD|x,HAIC) − logit P(PD|x,TACE)
    assert np.allclose(logit(risks["p_pd_haic"]) - logit(risks["p_pd_tace"]), h, atol=1e-6)
    mixed = np.where(np.arange(len(X)) % 2, "HAIC", "TACE")
    expected = np.where(mixed == "HAIC", risks["p_pd_haic"], risks["p_pd_tace"])
    assert np.allclose(fitted.predict_risk(X, mixed), expected)
    assert np.allclose(fitted.predict_risk(X, "TACE"), risks["p_pd_tace"])

    rec = fitted.recommend(X)
    assert set(rec) <= {"HAIC", "TACE"}  # cutoff 0: a preference for everyone whose h is not exactly 0
    assert (rec[h < 0] == "HAIC").all() and (rec[h > 0] == "TACE").all()
    c = float(np.quantile(np.abs(h), 0.5))
    model_c = copy.deepcopy(fitted).set_params(cutoff=c)
    rec_c = model_c.recommend(X)
    assert (rec_c[h < -c] == "HAIC").all() and (rec_c[h > c] == "TACE").all()
    assert (rec_c[np.abs(h) < c] == NO_PREFERENCE).all() and (rec_c == NO_PREFERENCE).sum() > 50


def test_interval_contains_mean_and_widens_far_from_training(fitted, held_out):
    X = held_out[0].iloc[:300]
    h, lower, upper = fitted.interaction_score(X, return_interval=True, alpha=0.1)
    assert np.allclose(h, fitted.interaction_score(X))
    assert (lower <= h).all() and (h <= upper).all()
    far = X * 6.0  # six standard deviations out: no training patient looks like this
    _, lower_far, upper_far = fitted.interaction_score(far, return_interval=True)
    assert np.median(upper_far - lower_far) > 2 * np.median(upper - lower)


def test_explanation_adds_up_to_the_score(fitted, held_out):
    X = held_out[0].iloc[:50]
    contributions = fitted.explain(X)
    assert list(contributions.columns) == list(X.columns) and (contributions.index == X.index).all()
    h = fitted.interaction_score(X)
    assert np.allclose(contributions.sum(axis=1) + contributions.attrs["baseline_h"], h, atol=0.02)


def test_training_summary_and_percentiles(fitted):
    s = fitted.training_summary_
    assert s["n"] == 800 and s["n_tace"] + s["n_haic"] == 800
    assert 0 < s["pd_rate_tace"] < 1 and 0 < s["pd_rate_haic"] < 1
    q = s["h_quantiles"]
    assert len(q) == 101 and q == sorted(q)
    assert fitted.h_percentile(q[50]) == pytest.approx(50, abs=1)
    assert fitted.h_percentile(q[0] - 1) == 0 and fitted.h_percentile(q[100] + 1) == 100
    assert np.allclose(fitted.h_percentile(np.array(q[10:12])), [10, 11], atol=1)


def test_same_seed_same_model_and_global_rng_untouched():
    X, therapy, y, _ = make_data(300, seed=3)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = InteractionModel(n_ensemble=2, epochs=50, random_state=7).fit(X, therapy, y)
    assert torch.equal(torch.get_rng_state(), before)
    b = InteractionModel(n_ensemble=2, epochs=50, random_state=7).fit(X, therapy, y)
    assert np.array_equal(a.interaction_score(X), b.interaction_score(X))


# ---------------------------------------------------------------------------------- sklearn, errors

def test_clone_and_params():
    model = InteractionModel(hidden_units=8, cutoff=0.3, propensity_weighting=True)
    cloned = clone(model)
    assert cloned is not model and cloned.get_params() == model.get_params()
    assert cloned.set_params(n_ensemble=2).n_ensemble == 2
    with pytest.raises(DelicaiteError, match="not fitted"):
        cloned.interaction_score(np.zeros((1, 3)))


def test_array_input_without_feature_names():
    X, therapy, y, _ = make_data(200, seed=4)
    model = InteractionModel(n_ensemble=1, epochs=30).fit(X.to_numpy(), list(therapy), pd.Series(y))
    assert model.feature_names_in_ is None and model.n_features_in_ == 8
    assert list(model.explain(X.to_numpy()[:3]).columns) == [f"x{i}" for i in range(8)]
    with pytest.raises(DelicaiteError, match="7 feature columns but the model was trained on 8"):
        model.predict_risks(X.to_numpy()[:, :7])


def test_clear_errors_for_bad_inputs(fitted):
    X, therapy, y, _ = make_data(100, seed=5)
    bad = therapy.astype(object)
    bad[3] = "TARE"
    with pytest.raises(DelicaiteError, match="unknown therapy 'TARE'"):
        InteractionModel(n_ensemble=1).fit(X, bad, y)
    with pytest.raises(DelicaiteError, match="unknown therapy 'tace'"):
        fitted.predict_risk(X, "tace")
    with pytest.raises(DelicaiteError, match="none received HAIC"):
        InteractionModel(n_ensemble=1).fit(X, ["TACE"] * 100, y)
    with pytest.raises(DelicaiteError, match="PD coded 1"):
        InteractionModel(n_ensemble=1).fit(X, therapy, y * 2)
    with_nan = X.copy()
    with_nan.loc[7, "f2"] = np.nan
    with pytest.raises(DelicaiteError, match="NaN.*f2"):
        InteractionModel(n_ensemble=1).fit(with_nan, therapy, y)
    with pytest.raises(DelicaiteError, match="lacks 2 feature column.*f1, f5"):
        fitted.interaction_score(X.drop(columns=["f1", "f5"]))
    text = X.assign(f3=X["f3"].astype(str))
    with pytest.raises(DelicaiteError, match="non-numeric feature column.*f3"):
        fitted.recommend(text)
    # extra columns are ignored and the order is taken from the names
    shuffled = X[X.columns[::-1]].assign(extra=1.0)
    assert np.allclose(fitted.interaction_score(shuffled), fitted.interaction_score(X))


# ---------------------------------------------------------------------------------------- model files

def test_save_load_round_trip(fitted, held_out, tmp_path):
    X = held_out[0].iloc[:100]
    json_path = save_model(fitted, tmp_path / "m", note="test model")
    assert json_path.name == "model.json" and (tmp_path / "m" / "weights.npz").is_file()
    for path in (tmp_path / "m", json_path):  # the directory or the model.json path
        loaded = load_model(path)
        assert np.array_equal(loaded.interaction_score(X), fitted.interaction_score(X))
        pd.testing.assert_frame_equal(loaded.predict_risks(X), fitted.predict_risks(X))
        for a, b in zip(loaded.interaction_score(X, True), fitted.interaction_score(X, True)):
            assert np.array_equal(a, b)
        assert (loaded.recommend(X) == fitted.recommend(X)).all()
        pd.testing.assert_frame_equal(loaded.explain(X), fitted.explain(X))
        assert loaded.get_params() == fitted.get_params()
        assert list(loaded.feature_names_in_) == list(fitted.feature_names_in_)
        assert loaded.training_summary_ == fitted.training_summary_
        assert loaded.metadata_["note"] == "test model"
        assert loaded.metadata_["weights_sha256"] == fitted.metadata_["weights_sha256"]

    meta = json.loads(json_path.read_text())
    assert meta["format"] == "delicaite-interaction-model" and meta["format_version"] == 1
    assert set(meta["library_versions"]) == {"delicaite", "torch", "numpy", "scikit-learn"}
    assert len(meta["scaler"]["mean"]) == 8 and meta["cutoff"] == 0.0
    with np.load(tmp_path / "m" / "weights.npz", allow_pickle=False) as npz:  # plain arrays only
        assert all(npz[k].dtype == np.float32 for k in npz.files)
        # per tower: hidden layer (weight, bias), output layer (weight, bias) and the linear path's weight
        assert len([k for k in npz.files if k.startswith("member2.")]) == 10


def test_flipped_weight_byte_is_refused(fitted, tmp_path):
    save_model(fitted, tmp_path)
    weights = tmp_path / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"weights\.npz failed its sha256 check .*re-export the model"):
        load_model(tmp_path)


def test_edited_cutoff_is_refused(fitted, tmp_path):
    json_path = save_model(fitted, tmp_path)
    meta = json.loads(json_path.read_text())
    meta["cutoff"] = 0.5
    json_path.write_text(json.dumps(meta, indent=2))
    with pytest.raises(ModelFileError, match=r"model\.json failed its sha256 check"):
        load_model(json_path)


def test_missing_and_unknown_model_files_are_refused(fitted, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    json_path = save_model(fitted, tmp_path / "a")
    (tmp_path / "a" / "weights.npz").unlink()
    with pytest.raises(ModelFileError, match=r"weights\.npz is missing"):
        load_model(tmp_path / "a")
    json_path = save_model(fitted, tmp_path / "b")
    meta = json.loads(json_path.read_text())
    meta["format_version"] = 99
    json_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="format version 99"):
        load_model(json_path)
    json_path.write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(json_path)
    (tmp_path / "c").mkdir()
    with pytest.raises(ModelFileError, match=r"model\.json is missing"):
        load_model(tmp_path / "c")
