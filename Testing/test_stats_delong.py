"""DeLong's test (DELICAITELib.stats.delong) against an independent O(n²) computation, sklearn's AUC,
and its behaviour under the null (calibrated p-values) and under a clear difference (power)."""

import numpy as np
import pytest
from scipy.stats import binom, kstest, norm
from sklearn.metrics import roc_auc_score

from DELICAITELib.errors import DelicaiteError
from DELICAITELib.stats.delong import auc_and_variance, delong_ci, delong_covariance, delong_test, midranks


def _pairwise_delong(y, score_rows):
    """Textbook DeLong from the kernel ψ(x, y) = 1 if x > y, ½ if equal, 0 else: AUCs and covariance."""
    y = np.asarray(y)
    comps10, comps01 = [], []
    for s in score_rows:
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        comps10.append(psi.mean(axis=1))
        comps01.append(psi.mean(axis=0))
    v10, v01 = np.array(comps10), np.array(comps01)
    m, n = v10.shape[1], v01.shape[1]
    s10 = (v10 - v10.mean(1, keepdims=True)) @ (v10 - v10.mean(1, keepdims=True)).T / (m - 1)
    s01 = (v01 - v01.mean(1, keepdims=True)) @ (v01 - v01.mean(1, keepdims=True)).T / (n - 1)
    return v10.mean(axis=1), s10 / m + s01 / n


def _data(n, seed, ties):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    y[:2], y[2:4] = 1, 0  # both classes, at least two of each
    a = y * 0.8 + rng.normal(size=n)
    b = 0.6 * a + 0.8 * rng.normal(size=n) + 0.3 * y
    if ties:  # coarse scores: many ties within and across classes
        a, b = np.round(a * 2) / 2, np.round(b)
    return y, a, b


@pytest.mark.parametrize("n", [7, 40, 333])
@pytest.mark.parametrize("ties", [False, True])
def test_agrees_with_pairwise_computation(n, ties):
    y, a, b = _data(n, seed=n, ties=ties)
    if ties:
        assert len(np.unique(a)) < n / 2 or n < 10
    aucs_ref, cov_ref = _pairwise_delong(y, [a, b])
    aucs, cov = delong_covariance(y, np.vstack([a, b]))
    np.testing.assert_allclose(aucs, aucs_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(cov, cov_ref, rtol=0, atol=1e-10)
    auc_a, var_a = auc_and_variance(y, a)
    assert abs(auc_a - aucs_ref[0]) < 1e-10 and abs(var_a - cov_ref[0, 0]) < 1e-10
    res = delong_test(y, a, b)
    z_ref = (aucs_ref[0] - aucs_ref[1]) / np.sqrt(cov_ref[0, 0] + cov_ref[1, 1] - 2 * cov_ref[0, 1])
    assert abs(res.z - z_ref) < 1e-10
    assert abs(res.p - 2 * norm.sf(abs(z_ref))) < 1e-10
    assert res.difference == pytest.approx(res.auc_a - res.auc_b, abs=1e-15)


@pytest.mark.parametrize("ties", [False, True])
def test_auc_equals_sklearn(ties):
    y, a, _ = _data(500, seed=3, ties=ties)
    assert auc_and_variance(y, a)[0] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert auc_and_variance(y.astype(bool), -a)[0] == pytest.approx(roc_auc_score(y, -a), abs=1e-12)


def test_midranks_by_hand():
    np.testing.assert_array_equal(midranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])), [4, 1, 4, 2, 4])


def test_ci_contains_auc_and_is_wald():
    y, a, _ = _data(200, seed=5, ties=False)
    auc, lo, hi = delong_ci(y, a, level=0.9)
    _, var = auc_and_variance(y, a)
    assert lo < auc < hi
    assert hi - auc == pytest.approx(norm.ppf(0.95) * np.sqrt(var), rel=1e-12)


def test_null_p_values_are_calibrated():
    # two correlated scores with the same true AUC: each is signal + its own noise of equal variance
    rng = np.random.default_rng(2024)
    reps, n = 600, 120
    p_values = np.empty(reps)
    for r in range(reps):
        y = (rng.random(n) < 0.5).astype(int)
        common = rng.normal(size=n)
        a = y + common + rng.normal(size=n)
        b = y + common + rng.normal(size=n)
        p_values[r] = delong_test(y, a, b).p
    rejections = int((p_values < 0.05).sum())
    lo, hi = binom.ppf(0.0005, reps, 0.05), binom.ppf(0.9995, reps, 0.05)
    assert lo <= rejections <= hi, rejections
    assert kstest(p_values, "uniform").pvalue > 0.01


def test_power_for_clearly_different_aucs():
    rng = np.random.default_rng(7)
    y = (rng.random(300) < 0.5).astype(int)
    good = 2.0 * y + rng.normal(size=300)    # AUC ≈ 0.92
    weak = 0.3 * y + rng.normal(size=300)    # AUC ≈ 0.58
    res = delong_test(y, good, weak)
    assert res.auc_a > 0.85 and res.auc_b < 0.7
    assert res.p < 1e-6 and res.z > 0
    assert delong_test(y, good, good).p == 1.0


@pytest.mark.parametrize("y, a, message", [
    ([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], "both classes"),
    ([0, 1, 0, 1], [0.1, np.nan, 0.3, 0.4], "missing"),
    ([0, 1, 0, 1], [0.1, 0.2, 0.3], "has 3 values"),
    ([0, 1, 2, 1], [0.1, 0.2, 0.3, 0.4], "0/1"),
    ([0, 1, 0, 0], [0.1, 0.2, 0.3, 0.4], "at least 2"),
])
def test_refuses_bad_input(y, a, message):
    with pytest.raises(DelicaiteError, match=message):
        auc_and_variance(y, a)
    with pytest.raises(DelicaiteError, match=message):
        delong_test(y, a, np.arange(len(a), dtype=float)[: len(a)])
