"""Survival (DELICAITELib.stats.survival) and policy value (DELICAITELib.stats.policy): lifelines'
values, simulated data with a known truth, the real HCC-TACE-Seg OS by BCLC stage."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from lifelines import KaplanMeierFitter  # noqa: E402
from lifelines.statistics import logrank_test, multivariate_logrank_test  # noqa: E402
from lifelines.utils import median_survival_times  # noqa: E402
from scipy.stats import binom  # noqa: E402

from DELICAITELib.clinical import load_hcc_tace_seg  # noqa: E402
from DELICAITELib.errors import DelicaiteError  # noqa: E402
from DELICAITELib.simulate import simulate_cohort  # noqa: E402
from DELICAITELib.stats.policy import compare_policies, ipw_policy_value  # noqa: E402
from DELICAITELib.stats.survival import km_groups, plot_km  # noqa: E402


def _weibull(n, hr, rng, shape=1.2, scale=10.0):
    """Weibull times with S(t) = exp(-(t/scale)^shape · hr), uniform censoring over 5–40 months."""
    t = scale * (rng.exponential(size=n) / hr) ** (1 / shape)
    c = rng.uniform(5, 40, size=n)
    return np.minimum(t, c), (t <= c).astype(int)


def test_median_by_hand_and_equal_to_lifelines():
    # five deaths at 1..5 months: S = .8, .6, .4, ... → median 3 (first time S <= ½)
    r = km_groups([1, 2, 3, 4, 5], [1, 1, 1, 1, 1], ["a"] * 5)
    assert r["groups"]["a"]["median"] == 3.0 and np.isnan(r["logrank_p"])
    rng = np.random.default_rng(0)
    t, e = _weibull(150, 1.0, rng)
    g = np.where(rng.random(150) < 0.5, "x", "y")
    r = km_groups(t, e, g)
    for name in ("x", "y"):
        kmf = KaplanMeierFitter().fit(t[g == name], e[g == name])
        ci = median_survival_times(kmf.confidence_interval_)
        info = r["groups"][name]
        assert info["median"] == kmf.median_survival_time_
        assert (info["median_lo"], info["median_hi"]) == (ci.iloc[0, 0], ci.iloc[0, 1])
        assert info["median_lo"] <= info["median"] <= info["median_hi"]
        assert info["n"] == (g == name).sum() and info["events"] == e[g == name].sum()
    assert r["logrank_p"] == pytest.approx(logrank_test(t[g == "x"], t[g == "y"], e[g == "x"], e[g == "y"]).p_value)
    assert r["test"] == "log-rank"


def test_known_hazard_ratio_separates_and_equal_groups_do_not():
    rng = np.random.default_rng(1)
    t1, e1 = _weibull(300, 1.0, rng)
    t2, e2 = _weibull(300, 2.0, rng)
    r = km_groups(np.r_[t1, t2], np.r_[e1, e2], ["ref"] * 300 + ["hr2"] * 300)
    assert r["logrank_p"] < 0.001
    # true medians: scale · (ln 2 / hr)^(1/shape)
    for name, hr in (("ref", 1.0), ("hr2", 2.0)):
        g = r["groups"][name]
        assert g["median_lo"] <= 10 * (np.log(2) / hr) ** (1 / 1.2) <= g["median_hi"]
    # equal groups: the test keeps its level over replicates
    reps = 200
    rejections = sum(km_groups(*(np.r_[a, b] for a, b in zip(_weibull(100, 1.0, rng), _weibull(100, 1.0, rng))),
                               ["a"] * 100 + ["b"] * 100)["logrank_p"] < 0.05 for _ in range(reps))
    assert rejections <= binom.ppf(0.999, reps, 0.05)


def test_real_hcc_os_by_bclc(hcc_clinical_csv, tmp_path):
    covariates, outcomes = load_hcc_tace_seg(hcc_clinical_csv)
    r = km_groups(outcomes.os_months, outcomes.os_event, covariates.bclc)
    assert set(r["groups"]) == {"A", "B", "C", "D"} and r["test"] == "log-rank (4 groups)"
    assert sum(g["n"] for g in r["groups"].values()) == 105
    assert all(np.isfinite(r["groups"][s]["median"]) and r["groups"][s]["median"] > 0 for s in "BC")
    assert len(r["pairwise"]) == 6
    ref = multivariate_logrank_test(outcomes.os_months, covariates.bclc, outcomes.os_event)
    assert r["logrank_p"] == pytest.approx(ref.p_value)
    fig, ax = plt.subplots()
    plot_km(ax, outcomes.os_months, outcomes.os_event, covariates.bclc, title="HCC-TACE-Seg OS by BCLC")
    fig.savefig(tmp_path / "km.png")
    plt.close(fig)
    assert (tmp_path / "km.png").stat().st_size > 10_000
    assert len(ax.get_lines()) >= 4


def test_survival_refuses_bad_input():
    with pytest.raises(DelicaiteError, match="one value per patient"):
        km_groups([1, 2], [1], ["a", "b"])
    with pytest.raises(DelicaiteError, match="event must be"):
        km_groups([1, 2], [1, 2], ["a", "b"])
    with pytest.raises(DelicaiteError, match="missing"):
        km_groups([1, 2], [1, 0], ["a", None])


# ------------------------------------------------------------------ policy value

def _true_value(cohort, rule):
    """The true disease-control rate if every patient received `rule` (from the known probabilities)."""
    return float(np.mean(np.where(rule == "HAIC", 1 - cohort.true_p_haic, 1 - cohort.true_p_tace)))


@pytest.mark.parametrize("assignment", ["physician", "randomized"])
def test_ipw_value_of_oracle_rule_matches_truth(assignment):
    cohort = simulate_cohort(4000, seed=11, assignment=assignment)
    good = 1 - cohort.pd
    oracle = cohort.oracle_best
    res = ipw_policy_value(good, cohort.therapy, oracle, cohort.propensity, n_boot=300, seed=1)
    truth = _true_value(cohort, oracle)
    assert abs(res["value"] - truth) < 0.03 and res["lo"] < truth < res["hi"]
    assert res["n_followed"] == int((cohort.therapy == oracle).sum())
    assert abs(res["value_ht"] - truth) < 0.05
    table = compare_policies(good, cohort.therapy, oracle, cohort.propensity, n_boot=300, seed=1)
    assert set(table) == {"recommended", "all TACE", "all HAIC", "as treated"}
    for name in ("all TACE", "all HAIC"):
        rule = np.full(len(cohort), name.split()[1])
        assert abs(table[name]["value"] - _true_value(cohort, rule)) < 0.03
    # truth: oracle 0.76, all HAIC 0.74, all TACE 0.19 (HAIC is better for 85 % of patients)
    assert table["recommended"]["value"] > table["all HAIC"]["value"] > table["all TACE"]["value"] + 0.4
    assert table["as treated"]["value"] == pytest.approx(good.mean())
    assert table["recommended"]["value"] == res["value"]
    # paired on the same resamples: the difference has its own interval, and the small true gain of the
    # oracle over all HAIC (0.016) lies inside it
    gain = table["all HAIC"]["difference"]
    assert gain["value"] == pytest.approx(table["recommended"]["value"] - table["all HAIC"]["value"])
    assert gain["lo"] < _true_value(cohort, oracle) - _true_value(cohort, np.full(len(cohort), "HAIC")) < gain["hi"]
    others = compare_policies(good, cohort.therapy, oracle, cohort.propensity, n_boot=300, seed=1,
                              others={"HAIC if PVTT": np.where(cohort.covariates["pvtt"] == 1, "HAIC", "TACE")})
    assert others["HAIC if PVTT"]["difference"]["lo"] > 0  # the oracle beats the one-covariate rule
    assert "difference" not in others["recommended"]


def test_ipw_with_fitted_propensity():
    cohort = simulate_cohort(4000, seed=12)
    x = cohort.covariates[["pvtt", "metastasis", "max_diameter", "child_pugh"]].astype(float).copy()
    x["gt3"] = (cohort.covariates.tumour_number == ">3").astype(float)
    x["afp400"] = (cohort.covariates.afp >= 400).astype(float)
    res = ipw_policy_value(1 - cohort.pd, cohort.therapy, cohort.oracle_best, None, covariates=x, n_boot=200)
    assert abs(res["value"] - _true_value(cohort, cohort.oracle_best)) < 0.03
    assert res["propensity"] == "fitted (logistic regression on 6 covariates)"


def test_policy_refuses_bad_propensities():
    good, received, rec = np.array([1, 0, 1]), np.array(["TACE", "HAIC", "HAIC"]), np.array(["TACE"] * 3)
    for bad in ([0.5, 1.0, 0.2], [0.5, np.nan, 0.2], [0.0, 0.5, 0.5]):
        with pytest.raises(DelicaiteError, match=r"\(0, 1\)"):
            ipw_policy_value(good, received, rec, bad)
    with pytest.raises(DelicaiteError, match="TACE or HAIC"):
        ipw_policy_value(good, np.array(["TACE", "RFA", "HAIC"]), rec, [0.5] * 3)
    with pytest.raises(DelicaiteError, match="propensity or covariates"):
        ipw_policy_value(good, received, rec, None)
