"""Propensity of HAIC given the covariates, and the stabilised inverse-propensity weights it gives.

Physicians chose the therapy in the study, so the weighted sample mimics a randomised one: each
patient counts 1 / P(therapy received | x), times the marginal share of that therapy (stabilised).
"""

import numpy as np
from sklearn.linear_model import LogisticRegression

CLIP = (0.05, 0.95)


def fit_propensity(x_std: np.ndarray, t: np.ndarray, sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Logistic regression of HAIC (t = +1) on standardised covariates; returns (coef, intercept)."""
    lr = LogisticRegression(C=1.0, max_iter=1000)
    lr.fit(x_std, (t > 0).astype(int), sample_weight=sample_weight)
    return lr.coef_.ravel().astype(float), float(lr.intercept_[0])


def propensity_haic(x_std: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    """P(HAIC | x) from stored coefficients, clipped to CLIP so no patient gets an extreme weight."""
    p = 1.0 / (1.0 + np.exp(-(x_std @ np.asarray(coef) + intercept)))
    return np.clip(p, *CLIP)


def stabilised_weights(t: np.ndarray, p_haic: np.ndarray) -> np.ndarray:
    """w = P(T = t) / P(T = t | x) for the therapy received; mean close to 1 by construction."""
    haic = t > 0
    share_haic = haic.mean()
    return np.where(haic, share_haic / p_haic, (1.0 - share_haic) / (1.0 - p_haic))
