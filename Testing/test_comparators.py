"""The comparators' building blocks: splits by centre, array predictors equal to scikit-learn, and
checksummed comparator files (no pickle). No interaction model is trained here, so this file is fast."""

import numpy as np
import pandas as pd
import pytest

from DELICAITELib.cohort import column_groups, design_frame
from DELICAITELib.cohort.comparators.files import load_comparator, save_comparator
from DELICAITELib.cohort.comparators.models import (PREDICT, THERAPY_COLUMN, Comparator, fit_estimator, fit_preprocessing,
                                             input_matrix)
from DELICAITELib.cohort.splits import centre_split, stratified_share, training_centre
from DELICAITELib.stats.classification import youden_threshold
from DELICAITELib.errors import ModelFileError
from DELICAITELib.simulate import simulate_cohort


@pytest.fixture(scope="module")
def frame():
    return design_frame(simulate_cohort(900, seed=3))


def _stratum_shares(df):
    return (df["therapy"] + "|" + df["pd"].astype(int).astype(str)).value_counts(normalize=True)


def test_centre_split_follows_the_rule(frame):
    splits, info = centre_split(frame, internal_share=0.25, seed=0)
    assert info["training_centre"] == "C1" == training_centre(frame["centre"])
    assert list(splits["patient_id"]) == list(frame["patient_id"])  # one row per patient, so no one is in two sets
    home = (frame["centre"] == "C1").to_numpy()
    assert set(splits.loc[~home, "set"]) == {"external_test"}  # external test = the other centres exactly
    assert set(splits.loc[home, "set"]) == {"training", "internal_test"}
    internal = (splits["set"] == "internal_test").to_numpy()
    assert abs(internal.sum() / home.sum() - 0.25) < 0.005
    # stratification: every therapy x PD stratum has (almost) the same share in internal test and training
    shares = pd.concat([_stratum_shares(frame[internal]), _stratum_shares(frame[(splits["set"] == "training").to_numpy()])], axis=1)
    assert (shares.iloc[:, 0] - shares.iloc[:, 1]).abs().max() < 0.01
    assert info["n"] == {"training": int(home.sum() - internal.sum()), "internal_test": int(internal.sum()),
                         "external_test": int((~home).sum())}


def test_a_random_split_would_not_be_as_balanced(frame):
    """The tolerance above is meaningful: unstratified 25 % shares of the same patients drift further."""
    home = frame[frame["centre"] == "C1"].reset_index(drop=True)
    drifts = []
    for seed in range(20):
        take = np.random.default_rng(seed).permutation(len(home))[: int(round(0.25 * len(home)))]
        mask = np.zeros(len(home), bool)
        mask[take] = True
        d = pd.concat([_stratum_shares(home[mask]), _stratum_shares(home[~mask])], axis=1)
        drifts.append((d.iloc[:, 0] - d.iloc[:, 1]).abs().max())
    assert np.median(drifts) > 0.01


def test_unknown_pd_is_never_trained_on(frame):
    f = frame.copy()
    unknown = f.index[(f["centre"] == "C1")][:7].tolist() + f.index[(f["centre"] == "C2")][:3].tolist()
    f.loc[unknown, "pd"] = np.nan
    splits, info = centre_split(f, seed=1)
    assert (splits.loc[unknown, "set"] != "training").all()
    assert splits.loc[unknown, "pd_known"].eq(0).all()
    assert info["n_unknown_pd_left_out_of_training"] == 7 and info["n_unknown_pd"] == 10


def test_stratified_share_is_reproducible_and_sized(frame):
    a, rule = stratified_share(frame["therapy"], frame["pd"], 0.2, seed=5)
    b, _ = stratified_share(frame["therapy"], frame["pd"], 0.2, seed=5)
    assert rule == "therapy x PD" and (a == b).all() and a.sum() == 180


@pytest.mark.parametrize("kind, params", [
    ("logistic", {"C": 0.1}),
    ("gbm", {"n_estimators": 80, "learning_rate": 0.1, "max_depth": 3}),
    ("mlp", {"hidden_units": 16, "alpha": 1e-2, "learning_rate_init": 1e-2}),
])
def test_array_predictors_equal_scikit_learn(frame, kind, params):
    columns = column_groups(frame)["clinical"] + [THERAPY_COLUMN]
    x = input_matrix(frame, columns)
    medians, mean, scale = fit_preprocessing(x[:500])
    xs = (x - mean) / scale
    est, arrays = fit_estimator(kind, xs[:500], frame["pd"].to_numpy(int)[:500], params, seed=0, epochs=40)
    np.testing.assert_allclose(PREDICT[kind](arrays, params, xs), est.predict_proba(xs)[:, 1], rtol=0, atol=1e-12)
    # also far outside the training range, where the trees' float32 comparisons matter most
    wild = xs[:50] * 7.3 + 0.123
    np.testing.assert_allclose(PREDICT[kind](arrays, params, wild), est.predict_proba(wild)[:, 1], rtol=0, atol=1e-12)


def _fitted(frame, kind="gbm", params=None):
    params = params or {"n_estimators": 30, "learning_rate": 0.1, "max_depth": 2}
    columns = ["alb", "pvtt", "afp_ge_400", THERAPY_COLUMN]
    x = input_matrix(frame, columns)
    medians, mean, scale = fit_preprocessing(x)
    _, arrays = fit_estimator(kind, (x - mean) / scale, frame["pd"].to_numpy(int), params, seed=0)
    return Comparator("radiomics_gbm", kind, columns, medians, mean, scale, params, arrays, threshold=0.4,
                      info={"inputs": "test"})


def test_comparator_file_round_trip_is_exact_and_imputes_training_medians(frame, tmp_path):
    model = _fitted(frame)
    save_comparator(model, tmp_path / "m")
    back = load_comparator(tmp_path / "m")
    assert np.array_equal(back.predict_pd(frame), model.predict_pd(frame))
    assert back.threshold == 0.4 and back.columns == model.columns and back.params == model.params
    gap = frame.head(3).copy()
    gap["alb"] = np.nan
    filled = gap.copy()
    filled["alb"] = model.medians[0]
    assert np.array_equal(back.predict_pd(gap), back.predict_pd(filled))


@pytest.mark.parametrize("target", ["weights", "json"])
def test_tampered_comparator_file_fails_its_checksum(frame, tmp_path, target):
    save_comparator(_fitted(frame), tmp_path / "m")
    if target == "weights":
        arrays = dict(np.load(tmp_path / "m" / "weights.npz"))
        arrays["value"][3] += 0.5
        np.savez(tmp_path / "m" / "weights.npz", **arrays)
    else:
        path = tmp_path / "m" / "model.json"
        path.write_text(path.read_text().replace('"threshold": 0.4', '"threshold": 0.3'))
    with pytest.raises(ModelFileError, match="sha256"):
        load_comparator(tmp_path / "m")


def test_youden_threshold_maximises_sensitivity_plus_specificity():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, 400), 0, 1)
    t = youden_threshold(y, p)
    j = lambda c: ((p >= c) & (y == 1)).sum() / (y == 1).sum() - ((p >= c) & (y == 0)).sum() / (y == 0).sum()  # noqa: E731
    assert j(t) == pytest.approx(max(j(c) for c in np.unique(p)))
