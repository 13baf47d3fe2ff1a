"""Tian-style simulated trials with a KNOWN treatment-covariate interaction (Tian, Alizadeh, Gentles &
Tibshirani 2014, "A simple method for estimating interactions between a treatment and a large number
of covariates", JASA), for benchmarking interaction scores against the truth.

    X ~ N(0, Σ), Σ_jk = ρ^|j−k| (AR(1), ρ = 0.5), p covariates x1..xp
    logit P(Y = 1 | x, T) = g(x) + T · h(x) / 2,   T = −1 (TACE) or +1 (HAIC), Y = 1 progressive disease

    g(x) = −0.3 + 0.6·x2 − 0.5·x4 + 0.4·x6 + 0.5·(x4² − 1)          main effect, linear + one nonlinear term
    h(x) linear    = 0.2 + 1.0·x1 − 0.8·x3 + 0.6·x5                 sparse interaction (3 covariates)
    h(x) nonlinear = −0.4 + 0.7·(x1² − 1) − 0.8·x3 + 0.8·[x5 > 0]   the same covariates, non-additive in x1, x5

h > 0 means HAIC raises the PD risk, so the oracle recommends HAIC where h < 0 (DESIGN.md convention).
Therapy: "randomized" P(T = +1) = 1/2; "confounded" P(T = +1 | x) = expit(0.8·x1 − 0.8·x2 + 0.4·x6),
clipped to [0.05, 0.95]: x1 modifies the effect and x2, x6 drive the main effect, so a naive
comparison is biased. Only the first 6 covariates matter; the rest are correlated noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

RHO = 0.5
H_FORMS = ("linear", "nonlinear")
ASSIGNMENTS = ("randomized", "confounded")
PROPENSITY_CLIP = (0.05, 0.95)
MIN_COVARIATES = 6


@dataclass
class TianSample:
    """One simulated trial with its truth (arrays aligned with the rows of X)."""

    X: pd.DataFrame  # covariates x1..xp
    T: np.ndarray  # −1 TACE / +1 HAIC, as received
    y: np.ndarray  # 1 = progressive disease
    g: np.ndarray  # true main effect (logit scale)
    h: np.ndarray  # true interaction: logit P(PD | HAIC) − logit P(PD | TACE)
    propensity: np.ndarray  # true P(T = +1 | x)
    p_tace: np.ndarray  # true P(PD | x, TACE)
    p_haic: np.ndarray  # true P(PD | x, HAIC)
    h_form: str = "linear"  # the form of h that drew the sample (interaction_terms)

    @property
    def therapy(self) -> np.ndarray:
        return np.where(self.T > 0, "HAIC", "TACE").astype(object)

    @property
    def cate(self) -> np.ndarray:
        """True CATE of HAIC vs TACE on the probability scale: P(PD | HAIC) − P(PD | TACE)."""
        return self.p_haic - self.p_tace

    @property
    def oracle_haic(self) -> np.ndarray:
        """The oracle rule: HAIC where it lowers the PD risk (h < 0)."""
        return self.h < 0


def covariance(p: int, rho: float = RHO) -> np.ndarray:
    """AR(1) correlation matrix Σ_jk = ρ^|j−k|."""
    idx = np.arange(p)
    return rho ** np.abs(idx[:, None] - idx[None, :])


def main_effect(x: np.ndarray) -> np.ndarray:
    return -0.3 + 0.6 * x[:, 1] - 0.5 * x[:, 3] + 0.4 * x[:, 5] + 0.5 * (x[:, 3] ** 2 - 1.0)


_H_COEFFICIENTS = {"linear": (0.2, 1.0, -0.8, 0.6), "nonlinear": (-0.4, 0.7, -0.8, 0.8)}  # intercept, then per term


def interaction_terms(x: np.ndarray, h_form: str) -> np.ndarray:
    """The columns h is linear in: (x1, x3, x5) for the linear form, (x1² − 1, x3, [x5 > 0]) for the other."""
    if h_form == "linear":
        return np.column_stack([x[:, 0], x[:, 2], x[:, 4]])
    if h_form == "nonlinear":
        return np.column_stack([x[:, 0] ** 2 - 1.0, x[:, 2], (x[:, 4] > 0).astype(float)])
    raise ValueError(f"h_form must be one of {H_FORMS}, got {h_form!r}")


def interaction(x: np.ndarray, h_form: str) -> np.ndarray:
    intercept, *slopes = _H_COEFFICIENTS.get(h_form, (0.0,))
    return intercept + interaction_terms(x, h_form) @ np.array(slopes)


def propensity(x: np.ndarray, assignment: str) -> np.ndarray:
    if assignment == "randomized":
        return np.full(len(x), 0.5)
    if assignment == "confounded":
        return np.clip(expit(0.8 * x[:, 0] - 0.8 * x[:, 1] + 0.4 * x[:, 5]), *PROPENSITY_CLIP)
    raise ValueError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}")


def simulate(n: int, p: int, *, h_form: str = "linear", assignment: str = "randomized", seed: int = 0,
             rho: float = RHO) -> TianSample:
    """n patients with p covariates; the same (p, h_form, assignment) and any seed give one distribution."""
    if p < MIN_COVARIATES:
        raise ValueError(f"p must be at least {MIN_COVARIATES} (the truth uses x1..x6), got {p}")
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(np.zeros(p), covariance(p, rho), size=n, method="cholesky")
    g, h, e = main_effect(x), interaction(x, h_form), propensity(x, assignment)
    t = np.where(rng.random(n) < e, 1.0, -1.0)
    p_tace, p_haic = expit(g - h / 2.0), expit(g + h / 2.0)
    y = (rng.random(n) < np.where(t > 0, p_haic, p_tace)).astype(int)
    X = pd.DataFrame(x, columns=[f"x{j + 1}" for j in range(p)])
    return TianSample(X=X, T=t, y=y, g=g, h=h, propensity=e, p_tace=p_tace, p_haic=p_haic, h_form=h_form)


def disease_control_rate(sample: TianSample, haic: np.ndarray) -> float:
    """True expected disease-control rate (1 − PD) if each patient got HAIC where `haic` is True."""
    return float(np.mean(1.0 - np.where(haic, sample.p_haic, sample.p_tace)))
