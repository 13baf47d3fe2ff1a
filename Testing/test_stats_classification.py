"""Classification statistics (DELICAITELib.stats.classification): hand-computed examples, sklearn's
metrics, CI coverage of a known AUC in simulation, and calibration against a known truth."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from DELICAITELib.errors import DelicaiteError
from DELICAITELib.stats.classification import (bootstrap_auc_ci, calibration, confusion_counts, threshold_metrics,
                                               threshold_metrics_ci, youden_threshold)

Y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
P = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])


def test_youden_by_hand():
    # thresholds 0.7: sen 3/4, spe 4/4 → J = .75; 0.4: sen 1, spe 3/4 → J = .75; 0.6: sen 3/4, spe 3/4.
    # Ties in J go to the higher threshold.
    assert youden_threshold(Y, P) == 0.7
    assert youden_threshold(Y, np.where(P == 0.6, 0.35, P)) == 0.4  # now sen 1, spe 1 at 0.4


def test_threshold_metrics_by_hand_and_fixed_on_another_set():
    t = youden_threshold(Y, P)  # fixed on this "training" set
    y_test = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 1])
    p_test = np.array([0.9, 0.75, 0.5, 0.7, 0.2, 0.1, 0.8, 0.3, 0.65, 0.71])
    # at 0.7: predicted positive = .9 .75 .7 .8 .71 → tp 3 (.9 .75 .71), fp 2 (.7 .8), fn 2 (.5 .3), tn 3
    assert confusion_counts(y_test, p_test, t) == {"tp": 3, "fp": 2, "tn": 3, "fn": 2}
    m = threshold_metrics(y_test, p_test, t)
    assert m == pytest.approx({"acc": 6 / 10, "sen": 3 / 5, "spe": 3 / 5, "ppv": 3 / 5, "npv": 3 / 5, "f1": 6 / 10})


def test_metrics_equal_sklearn():
    rng = np.random.default_rng(11)
    y = (rng.random(400) < 0.35).astype(int)
    p = 1 / (1 + np.exp(-(1.5 * y - 1 + rng.normal(size=400))))
    t = youden_threshold(y, p)
    pred = (p >= t).astype(int)
    m = threshold_metrics(y, p, t)
    assert m["acc"] == pytest.approx(accuracy_score(y, pred))
    assert m["sen"] == pytest.approx(recall_score(y, pred))
    assert m["spe"] == pytest.approx(recall_score(y, pred, pos_label=0))
    assert m["ppv"] == pytest.approx(precision_score(y, pred))
    assert m["npv"] == pytest.approx(precision_score(y, pred, pos_label=0))
    assert m["f1"] == pytest.approx(f1_score(y, pred))


def test_metric_cis_bracket_values_and_are_reproducible():
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.5).astype(int)
    p = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(size=300))))
    ci = threshold_metrics_ci(y, p, 0.5, n_boot=500, seed=3)
    assert set(ci) == {"acc", "sen", "spe", "ppv", "npv", "f1"}
    for value, lo, hi in ci.values():
        assert lo <= value <= hi and hi - lo < 0.2
    assert ci == threshold_metrics_ci(y, p, 0.5, n_boot=500, seed=3)
    # stratified: the class sizes never change, so sensitivity's CI is that of a proportion of the positives
    sen = ci["sen"][0]
    half = norm.ppf(0.975) * np.sqrt(sen * (1 - sen) / y.sum())
    assert ci["sen"][2] - ci["sen"][1] == pytest.approx(2 * half, rel=0.25)


def test_auc_ci_point_equals_sklearn_and_covers_truth():
    d = 1.0
    true_auc = norm.cdf(d / np.sqrt(2))  # binormal, unit variances
    rng = np.random.default_rng(123)
    reps, covered = 200, 0
    for r in range(reps):
        y = np.r_[np.ones(60, int), np.zeros(90, int)]
        s = rng.normal(size=150) + d * y
        auc, lo, hi = bootstrap_auc_ci(y, s, n_boot=300, seed=r)
        if r == 0:
            assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        covered += lo <= true_auc <= hi
    # nominal 95 %; percentile bootstrap runs slightly narrow at this size, so allow 88–99 %
    assert 0.88 * reps <= covered <= 0.99 * reps, covered


def test_calibration_recovers_known_miscalibration():
    rng = np.random.default_rng(5)
    lp = rng.normal(-0.3, 1.2, size=20000)
    y = (rng.random(lp.size) < 1 / (1 + np.exp(-lp))).astype(int)
    good = calibration(y, 1 / (1 + np.exp(-lp)))
    assert good["slope"] == pytest.approx(1.0, abs=0.06) and good["intercept"] == pytest.approx(0.0, abs=0.05)
    assert (good["bins"]["observed"] - good["bins"]["mean_predicted"]).abs().max() < 0.04
    assert good["bins"]["n"].sum() == y.size and len(good["bins"]) == 10
    over = calibration(y, 1 / (1 + np.exp(-2 * lp)))  # twice too extreme → slope ½
    assert over["slope"] == pytest.approx(0.5, abs=0.03)
    shifted = calibration(y, 1 / (1 + np.exp(-(lp + 1))))  # one logit too high → intercept −1
    assert shifted["intercept"] == pytest.approx(-1.0, abs=0.05)


def test_calibration_small_example_by_hand():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.2, 0.4, 0.6, 0.8])
    c = calibration(y, p, n_bins=2)
    assert c["brier"] == pytest.approx((0.04 + 0.36 + 0.36 + 0.04) / 4)
    assert c["bins"].to_dict("list") == {"mean_predicted": pytest.approx([0.3, 0.7]), "observed": [0.5, 0.5], "n": [2, 2]}


def test_refusals():
    with pytest.raises(DelicaiteError, match="both classes"):
        bootstrap_auc_ci([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(DelicaiteError, match="missing"):
        youden_threshold([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(DelicaiteError, match="one prediction per patient"):
        threshold_metrics([0, 1, 1], [0.1, 0.3], 0.5)
    with pytest.raises(DelicaiteError, match=r"\[0, 1\]"):
        calibration([0, 1, 1], [0.1, 1.3, 0.3])


def test_patient_bootstrap_lets_the_prevalence_vary_and_widens_ppv():
    """Stratified resampling holds the class sizes; resampling patients lets the prevalence move too, which
    PPV and NPV depend on, so their intervals widen; sensitivity and specificity hardly change."""
    rng = np.random.default_rng(4)
    y = (rng.random(300) < 0.3).astype(int)
    p = np.clip(0.3 + 0.35 * (y - 0.3) + rng.normal(0, 0.2, 300), 0.01, 0.99)
    stratified = threshold_metrics_ci(y, p, 0.4, n_boot=3000, seed=1)
    patient = threshold_metrics_ci(y, p, 0.4, n_boot=3000, seed=1, scheme="patient")
    width = lambda ci: ci[2] - ci[1]  # noqa: E731
    assert stratified["ppv"][0] == patient["ppv"][0]  # the same point estimate
    assert width(patient["ppv"]) > 1.1 * width(stratified["ppv"])
    assert width(patient["npv"]) > 1.1 * width(stratified["npv"])
    with pytest.raises(DelicaiteError, match="bootstrap scheme"):
        threshold_metrics_ci(y, p, 0.4, scheme="jackknife")
