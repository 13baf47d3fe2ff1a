"""DeLong's test for ROC AUCs, in the fast O(n log n) form of Sun & Xu (2014).

DeLong, DeLong & Clarke-Pearson (Biometrics 1988) estimate the covariance of correlated AUCs (several
scores on the same patients) from "structural components": for positive i and negative j with the
kernel ψ(x, y) = 1 if x > y, ½ if x = y, 0 otherwise,

    V10_i = mean_j ψ(X_i, Y_j),   V01_j = mean_i ψ(X_i, Y_j),   AUC = mean_i V10_i,
    Cov(AUC) = S10 / m + S01 / n   (S10, S01: sample covariances of the components; m, n class sizes).

Sun & Xu ("Fast implementation of DeLong's algorithm", IEEE Signal Process. Lett. 2014) obtain all of
them from midranks: with T_z the midranks of the pooled scores, T_x those within the positives and T_y
within the negatives, V10_i = (T_z,i − T_x,i) / n and V01_j = 1 − (T_z,m+j − T_y,j) / m. Ties count ½,
exactly as in the kernel. Positive means y == 1; a higher score means "more likely positive".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

from ..errors import DelicaiteError


@dataclass(frozen=True)
class DelongResult:
    """Paired DeLong test of two AUCs on the same patients: difference = auc_a − auc_b, z = difference / se."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    z: float
    p: float

    def as_dict(self) -> dict:
        return asdict(self)


def check_binary_outcome(y, name: str = "y") -> np.ndarray:
    """y as a 0/1 int array; refuses NaN, other values, and an outcome with only one class."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise DelicaiteError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(int)
    try:
        values = arr.astype(float)
    except (TypeError, ValueError):
        raise DelicaiteError(f"{name} must be 0/1 (or True/False), got values like {arr[:3].tolist()}") from None
    if np.isnan(values).any():
        raise DelicaiteError(f"{name} has {int(np.isnan(values).sum())} missing values; drop those patients first")
    if not np.isin(values, (0.0, 1.0)).all():
        bad = sorted(set(values[~np.isin(values, (0.0, 1.0))].tolist()))[:3]
        raise DelicaiteError(f"{name} must be 0/1 (1 = event, e.g. PD), found {bad}")
    out = values.astype(int)
    n_pos = int(out.sum())
    if n_pos == 0 or n_pos == len(out):
        raise DelicaiteError(f"{name} needs both classes (0 and 1) for an AUC; it has only {out[0] if len(out) else 'no values'}")
    return out


def _check_scores(scores, n: int, name: str) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1:
        raise DelicaiteError(f"{name} must be one score per patient (1-D), got shape {s.shape}")
    if len(s) != n:
        raise DelicaiteError(f"{name} has {len(s)} values but y has {n}; give one score per patient")
    if not np.isfinite(s).all():
        raise DelicaiteError(f"{name} has {int((~np.isfinite(s)).sum())} missing or infinite values; "
                             "drop those patients or fix the scores")
    return s


def midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x with ties sharing the mean of their ranks (O(n log n))."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.r_[0, np.flatnonzero(xs[1:] != xs[:-1]) + 1]
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    # a tie group occupying sorted positions starts..ends-1 holds ranks starts+1..ends, mean (starts+1+ends)/2
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    return ranks


def structural_components(y, score_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs (k,), V10 (k, m) and V01 (k, n) for k score vectors (rows of score_matrix) on the same y."""
    y = check_binary_outcome(y)
    s = np.atleast_2d(np.asarray(score_matrix, dtype=float))
    pos, neg = s[:, y == 1], s[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    k = s.shape[0]
    v10, v01 = np.empty((k, m)), np.empty((k, n))
    for r in range(k):
        tx, ty = midranks(pos[r]), midranks(neg[r])
        tz = midranks(np.concatenate([pos[r], neg[r]]))
        v10[r] = (tz[:m] - tx) / n
        v01[r] = 1.0 - (tz[m:] - ty) / m
    return v10.mean(axis=1), v10, v01


def delong_covariance(y, score_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(aucs (k,), covariance (k, k)) of k score vectors on the same patients; needs ≥ 2 of each class."""
    y = check_binary_outcome(y)
    s = np.atleast_2d(np.asarray(score_matrix, dtype=float))
    for r, row in enumerate(s):
        _check_scores(row, len(y), f"scores[{r}]")
    m, n = int(y.sum()), int(len(y) - y.sum())
    if m < 2 or n < 2:
        raise DelicaiteError(f"DeLong variance needs at least 2 positives and 2 negatives, got {m} and {n}")
    aucs, v10, v01 = structural_components(y, s)
    cov = np.atleast_2d(np.cov(v10, ddof=1)) / m + np.atleast_2d(np.cov(v01, ddof=1)) / n
    return aucs, cov


def auc_and_variance(y, scores) -> tuple[float, float]:
    """AUC of `scores` for outcome y (1 = positive) and its DeLong variance."""
    y = check_binary_outcome(y)
    s = _check_scores(scores, len(y), "scores")
    aucs, cov = delong_covariance(y, s[None, :])
    return float(aucs[0]), float(cov[0, 0])


def delong_test(y, scores_a, scores_b) -> DelongResult:
    """Paired two-sided DeLong test of AUC(a) = AUC(b), both scores on the same patients and outcome y."""
    y = check_binary_outcome(y)
    a = _check_scores(scores_a, len(y), "scores_a")
    b = _check_scores(scores_b, len(y), "scores_b")
    aucs, cov = delong_covariance(y, np.vstack([a, b]))
    diff = float(aucs[0] - aucs[1])
    # round-off can make the variance of identical scores a tiny negative number
    var = max(float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]), 0.0)
    se = float(np.sqrt(var))
    if se > 0:
        z = diff / se
    else:  # identical (or perfectly ranked) scores: no sampling variation in the difference
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    p = float(2.0 * norm.sf(abs(z)))
    return DelongResult(float(aucs[0]), float(aucs[1]), diff, se, float(z), p)


def delong_ci(y, scores, level: float = 0.95) -> tuple[float, float, float]:
    """(auc, lo, hi): Wald interval auc ± z·se from the DeLong variance, clipped to [0, 1]."""
    if not 0 < level < 1:
        raise DelicaiteError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    auc, var = auc_and_variance(y, scores)
    half = norm.ppf(0.5 + level / 2.0) * np.sqrt(var)
    return auc, float(max(0.0, auc - half)), float(min(1.0, auc + half))
