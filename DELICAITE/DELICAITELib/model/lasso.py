"""The lasso-penalised logistic regression Tian's method needs: case weights, a fixed offset, and a first
coefficient left unpenalised (the interaction's intercept).

    minimise  (1/Σw) Σ_i w_i · ℓ(y_i, o_i + x_iᵀβ) + λ · Σ_{j ≥ 1} |β_j|,   ℓ the logistic deviance / 2

solved as glmnet does (Friedman, Hastie & Tibshirani 2010): proximal Newton steps, each a weighted
least-squares problem solved by cyclic coordinate descent with soft thresholding, warm-started along a
decreasing path of λ. scikit-learn's logistic regression takes no offset; statsmodels' penalised GLM
does and gives the same β (Testing/test_tian_lasso.py compares them) at a hundredth of the speed.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

TOLERANCE = 1e-7
MAX_NEWTON_STEPS = 100
MAX_SWEEPS = 1000


def _normalised(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    return w / w.sum()


def _intercept_only(x0: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray) -> float:
    """The unpenalised first coefficient with every other one at zero (1-D Newton)."""
    b = 0.0
    for _ in range(MAX_NEWTON_STEPS):
        p = expit(offset + x0 * b)
        gradient = np.sum(w * x0 * (y - p))
        curvature = np.sum(w * x0**2 * p * (1 - p))
        if curvature <= 1e-12:
            break
        step = gradient / curvature
        b += step
        if abs(step) < TOLERANCE:
            break
    return b


def largest_penalty(x: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray) -> float:
    """The smallest λ at which every penalised coefficient is zero."""
    w = _normalised(w)
    b0 = _intercept_only(x[:, 0], y, w, offset)
    residual = w * (y - expit(offset + x[:, 0] * b0))
    return float(np.max(np.abs(x[:, 1:].T @ residual))) if x.shape[1] > 1 else 0.0


def lasso_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray, penalty: float,
                   start: np.ndarray | None = None) -> np.ndarray:
    """β minimising the objective above at λ = ``penalty`` (from ``start``, zeros by default)."""
    w = _normalised(w)
    beta = np.zeros(x.shape[1]) if start is None else np.array(start, dtype=float)
    thresholds = np.r_[0.0, np.full(x.shape[1] - 1, float(penalty))]
    for _ in range(MAX_NEWTON_STEPS):
        eta = offset + x @ beta
        p = expit(eta)
        variance = np.maximum(p * (1 - p), 1e-5)
        v = w * variance
        residual = (y - p) / variance  # working response minus the current fit
        curvature = (v[:, None] * x**2).sum(axis=0)
        before = beta.copy()
        for _ in range(MAX_SWEEPS):
            largest_change = 0.0
            for j in range(x.shape[1]):
                if curvature[j] <= 1e-12:
                    continue
                old = beta[j]
                rho = np.dot(v * x[:, j], residual) + curvature[j] * old
                new = np.sign(rho) * max(abs(rho) - thresholds[j], 0.0) / curvature[j]
                if new != old:
                    residual -= x[:, j] * (new - old)
                    beta[j] = new
                    largest_change = max(largest_change, abs(new - old))
            if largest_change < TOLERANCE:
                break
        if np.max(np.abs(beta - before)) < TOLERANCE:
            break
    return beta


def lasso_path(x: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray, penalties) -> list[np.ndarray]:
    """β at each λ of ``penalties`` (decreasing), each fit warm-started from the previous one."""
    path, beta = [], None
    for penalty in penalties:
        beta = lasso_logistic(x, y, w, offset, penalty, start=beta)
        path.append(beta.copy())
    return path


def deviance(logit: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Weighted binomial deviance of the logits ``logit`` for outcomes ``y``."""
    p = np.clip(expit(logit), 1e-12, 1 - 1e-12)
    return float(-2.0 * np.sum(w * (y * np.log(p) + (1 - y) * np.log(1 - p))))
