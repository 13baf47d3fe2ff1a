"""The simulated cohort: Table-1 marginals, therapy assignment, PD calibration against the known truth,
the study's disease-control rates (and the knob that changes them), OS linked to PD, reproducibility,
files."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from DELICAITELib.clinical import FIELD_NAMES, encode, validate_table
from DELICAITELib.cohort import Cohort, read_cohort, write_cohort
from DELICAITELib.simulate import simulate_cohort, true_g_function, true_h_function

N = 20000


@pytest.fixture(scope="module")
def physician():
    return simulate_cohort(n=N, seed=1, assignment="physician")


@pytest.fixture(scope="module")
def randomized():
    return simulate_cohort(n=N, seed=2, assignment="randomized")


def km_median(time, event):
    """Kaplan–Meier median (first time the survival curve reaches 0.5), written out to check by hand."""
    order = np.argsort(time, kind="stable")
    t, e = np.asarray(time)[order], np.asarray(event)[order]
    at_risk = len(t) - np.arange(len(t))
    surv = np.cumprod(1 - e / at_risk)
    below = np.nonzero(surv <= 0.5)[0]
    return t[below[0]] if len(below) else np.inf


# ---------------------------------------------------------------- covariates

@pytest.mark.parametrize("field, quartiles, tol", [
    ("age", (44, 52, 61), 1.0), ("alb", (35.7, 38.8, 42.2), 0.3), ("alt", (31, 48, 74), 2),
    ("ast", (46, 70, 116), 3), ("tbil", (12, 16, 23), 0.6), ("pt", (11.68, 12.40, 13.30), 0.1),
    ("inr", (1.01, 1.08, 1.15), 0.015), ("plt", (162, 218, 289), 6), ("crp", (7, 20, 30), 1.0),
    ("cre", (61, 72, 80), 1.5), ("max_diameter", (8.2, 11.0, 13.5), 0.3),
])
def test_continuous_marginals_follow_table1(physician, field, quartiles, tol):
    q = physician.covariates[field].quantile([0.25, 0.5, 0.75]).to_numpy()
    np.testing.assert_allclose(q, quartiles, atol=tol, err_msg=field)


def test_categorical_marginals_follow_table1(physician):
    c = physician.covariates
    observed = {
        "male": (c["sex"] == "male").mean(), "ecog0": (c["ecog"] == 0).mean(), "comorbidity": c["comorbidity"].mean(),
        "hbv": (c["etiology"] == "HBV").mean(), "ascites": c["ascites"].mean(), "cp5": (c["child_pugh"] == 5).mean(),
        "cp6": (c["child_pugh"] == 6).mean(), "gt3": (c["tumour_number"] == ">3").mean(), "pvtt": c["pvtt"].mean(),
        "metastasis": c["metastasis"].mean(), "bclc_a": (c["bclc"] == "A").mean(), "bclc_b": (c["bclc"] == "B").mean(),
        "bclc_c": (c["bclc"] == "C").mean(), "afp400": (c["afp"] >= 400).mean(),
    }
    table1 = {"male": 0.88, "ecog0": 0.95, "comorbidity": 0.093, "hbv": 0.93, "ascites": 0.18, "cp5": 0.65,
              "cp6": 0.23, "gt3": 0.55, "pvtt": 0.60, "metastasis": 0.36, "bclc_a": 0.13, "bclc_b": 0.19,
              "bclc_c": 0.68, "afp400": 0.59}
    for key, target in table1.items():
        assert observed[key] == pytest.approx(target, abs=0.015), key


def test_covariates_are_schema_valid_and_clinically_consistent():
    cohort = simulate_cohort(n=900, seed=3)
    assert list(cohort.covariates.columns) == list(FIELD_NAMES)
    validate_table(cohort.covariates)  # raw units, inside the plausible ranges, nothing missing
    c = cohort.covariates
    # BCLC C whenever there is PVTT or metastasis (staging logic)
    assert (c.loc[(c["pvtt"] == 1) | (c["metastasis"] == 1), "bclc"] == "C").all()
    # correlated labs, as in real patients
    assert np.corrcoef(np.log(c["alt"]), np.log(c["ast"]))[0, 1] > 0.5
    assert c.loc[c["ascites"] == 1, "alb"].median() < c.loc[c["ascites"] == 0, "alb"].median()
    assert not encode(c).isna().any().any()


# ---------------------------------------------------------------- therapy

def test_physician_choice_depends_on_covariates(physician):
    c, haic = physician.covariates, physician.therapy == "HAIC"
    assert set(physician.therapy) == {"TACE", "HAIC"}
    assert physician.propensity.min() >= 0.1 and physician.propensity.max() <= 0.9
    assert physician.propensity.std() > 0.1
    assert haic[c["pvtt"] == 1].mean() - haic[c["pvtt"] == 0].mean() > 0.2
    # the choice follows the stated propensity
    bins = np.digitize(physician.propensity, [0.3, 0.5, 0.7])
    for b in range(4):
        assert haic[bins == b].mean() == pytest.approx(physician.propensity[bins == b].mean(), abs=0.03)


def test_randomized_choice_ignores_covariates(randomized):
    c, haic = randomized.covariates, randomized.therapy == "HAIC"
    assert np.all(randomized.propensity == 0.5)
    assert haic.mean() == pytest.approx(0.5, abs=0.015)
    for mask in (c["pvtt"] == 1, c["tumour_number"] == ">3", c["afp"] >= 400, c["max_diameter"] > 11):
        assert abs(haic[mask].mean() - haic[~mask].mean()) < 0.03


# ---------------------------------------------------------------- the truth and PD

def test_truth_functions_reproduce_the_cohort(physician):
    np.testing.assert_allclose(true_h_function(physician.covariates), physician.true_h)
    np.testing.assert_allclose(true_g_function(physician.covariates), physician.true_g)
    # contract: h = logit P(PD|HAIC) - logit P(PD|TACE), g their mean
    np.testing.assert_allclose(logit(physician.true_p_haic) - logit(physician.true_p_tace), physician.true_h, atol=1e-9)
    np.testing.assert_allclose((logit(physician.true_p_haic) + logit(physician.true_p_tace)) / 2, physician.true_g, atol=1e-9)
    # h changes sign; the oracle recommends HAIC for most (85 %) but not all patients
    assert np.mean(physician.true_h < 0) == pytest.approx(0.85, abs=0.02)
    assert physician.true_h.min() < -1 and physician.true_h.max() > 1


def test_truth_on_new_covariates():
    row = simulate_cohort(n=1, seed=0, n_centres=1).covariates
    with_pvtt, without = row.assign(pvtt=1), row.assign(pvtt=0)
    assert true_h_function(with_pvtt)[0] < true_h_function(without)[0]  # PVTT favours HAIC
    assert true_h_function(row.assign(alb=30.0))[0] < true_h_function(row.assign(alb=45.0))[0]


@pytest.mark.parametrize("which", ["physician", "randomized"])
def test_pd_is_calibrated_to_the_true_probabilities(physician, randomized, which):
    cohort = physician if which == "physician" else randomized
    p = np.where(cohort.therapy == "HAIC", cohort.true_p_haic, cohort.true_p_tace)
    edges = np.quantile(p, np.linspace(0, 1, 11)[1:-1])
    bins = np.digitize(p, edges)
    for b in range(10):
        assert cohort.pd[bins == b].mean() == pytest.approx(p[bins == b].mean(), abs=0.035), f"decile {b}"
    # HAIC controls disease more often than TACE, as in the study
    assert cohort.pd[cohort.therapy == "HAIC"].mean() < cohort.pd[cohort.therapy == "TACE"].mean() - 0.3


def test_disease_control_rates_are_the_studys_and_the_knob_moves_them(physician):
    """Physician choice gives the primary set's rates (TACE 27.3 %, HAIC 80.5 %); other rates are asked for."""
    haic = physician.therapy == "HAIC"
    assert 1 - physician.pd[~haic].mean() == pytest.approx(0.273, abs=0.015)
    assert 1 - physician.pd[haic].mean() == pytest.approx(0.805, abs=0.015)
    other = simulate_cohort(n=N, seed=1, disease_control=(0.45, 0.70))
    haic = other.therapy == "HAIC"
    assert 1 - other.pd[~haic].mean() == pytest.approx(0.45, abs=0.015)
    assert 1 - other.pd[haic].mean() == pytest.approx(0.70, abs=0.015)
    assert other.info["disease_control"] == [0.45, 0.70] and set(other.info["intercepts"]) == {"g0", "h0"}
    with pytest.raises(ValueError, match="between 0 and 1"):
        simulate_cohort(n=10, disease_control=(0.3, 1.2))


def test_overall_survival_is_plausible_and_linked_to_pd(physician):
    from lifelines import CoxPHFitter

    assert (physician.os_months > 0).all() and set(np.unique(physician.os_event)) == {0, 1}
    assert 0.6 < physician.os_event.mean() < 0.95
    assert 8 <= km_median(physician.os_months, physician.os_event) <= 12
    # PD doubles the hazard: a Cox model adjusted for the prognostic covariates recovers log HR 0.7
    c = physician.covariates
    data = pd.DataFrame({"pd": physician.pd, "pvtt": c["pvtt"], "metastasis": c["metastasis"],
                         "child_pugh": c["child_pugh"], "diameter": c["max_diameter"], "afp400": (c["afp"] >= 400) * 1,
                         "ascites": c["ascites"], "time": physician.os_months, "event": physician.os_event})
    assert CoxPHFitter().fit(data, "time", "event").params_["pd"] == pytest.approx(0.7, abs=0.06)
    # so the patients who received their better therapy live longer (the study: 11.3 vs 8.1 months)
    maintain = physician.therapy == physician.oracle_best
    assert km_median(physician.os_months[maintain], physician.os_event[maintain]) > \
        km_median(physician.os_months[~maintain], physician.os_event[~maintain]) + 1.5


# ---------------------------------------------------------------- centres, seeds, files

def test_three_centres_first_largest():
    cohort = simulate_cohort()
    assert len(cohort) == 900 and len(set(cohort.patient_id)) == 900
    counts = pd.Series(cohort.centre).value_counts()
    assert set(counts.index) == {"C1", "C2", "C3"} and counts["C1"] == 645
    assert set(simulate_cohort(n=300, n_centres=5).centre) == {"C1", "C2", "C3", "C4", "C5"}
    with pytest.raises(ValueError, match="assignment"):
        simulate_cohort(assignment="coin")


def test_reproducible_by_seed():
    a, b, c = simulate_cohort(n=500, seed=7), simulate_cohort(n=500, seed=7), simulate_cohort(n=500, seed=8)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    assert not a.to_frame().equals(c.to_frame())


def test_write_read_round_trip(tmp_path):
    cohort = simulate_cohort(n=300, seed=4)
    out = write_cohort(cohort, tmp_path / "cohort")
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "covariates.csv", "manifest.csv", "truth.csv"]
    assert "SIMULATED" in (out / "README.txt").read_text()
    manifest = pd.read_csv(out / "manifest.csv")
    assert list(manifest.columns) == ["patient_id", "centre", "ap", "vp", "mask", "therapy", "pd", "os_months", "os_event"]
    assert manifest[["ap", "vp", "mask"]].isna().all(axis=None)  # covariates-only cohort
    back = read_cohort(out)
    assert isinstance(back, Cohort) and back.images is None
    pd.testing.assert_frame_equal(back.covariates, cohort.covariates, check_dtype=False)
    for name in ("patient_id", "centre", "therapy", "pd", "os_event"):
        np.testing.assert_array_equal(getattr(back, name), getattr(cohort, name), err_msg=name)
    for name in ("os_months", "true_g", "true_h", "propensity", "true_p_tace", "true_p_haic"):
        np.testing.assert_allclose(getattr(back, name), getattr(cohort, name), rtol=1e-8, err_msg=name)
    validate_table(back.covariates)  # "none" etiology and BCLC "0"/"A" survive the CSV
    (out / "truth.csv").unlink()
    blind = read_cohort(out)
    assert blind.true_h is None and blind.propensity is None and blind.oracle_best is None
