"""Value of a treatment policy from observational data by inverse probability weighting (IPW).

For a rule d(x) choosing TACE or HAIC, the rate of good outcome (disease control) if everybody were
treated by the rule is estimated from patients whose received therapy A agrees with it:

    Horvitz–Thompson   V_HT(d) = mean[ 1{A = d(X)} · Y / P(A | X) ]
    Hájek (normalised) V(d)    = Σ w Y / Σ w,  w = 1{A = d(X)} / P(A | X)

The Hájek form (the default `value`) is bounded by the range of Y and has the smaller variance; both
are consistent when P(A | X) is right and no confounder is missing. `propensity` is P(treated | x)
with treated = "HAIC" (as `Cohort.propensity`), given or fitted by logistic regression on `covariates`.
A recommendation that is neither therapy ("no clear preference") keeps the received therapy (w = 1).
CIs: percentile bootstrap over patients (seeded); a fitted propensity is held fixed across replicates,
which ignores its estimation error and, for IPW, tends to make the interval conservative. Two rules
are compared on the same resamples (paired), so their difference gets an interval of its own.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm

from ..errors import DelicaiteError

POLICIES = ("recommended", "all TACE", "all HAIC", "as treated")


def _labels(values, name: str, therapies: tuple[str, str], allow_other: bool = False) -> np.ndarray:
    arr = np.asarray(values, dtype=object).astype(str)
    if not allow_other:
        bad = sorted(set(arr) - set(therapies))
        if bad:
            raise DelicaiteError(f"{name} must be {therapies[0]} or {therapies[1]} for every patient, found {bad[:3]}")
    return arr


def fit_propensity(received, covariates, treated: str = "HAIC") -> np.ndarray:
    """P(received == treated | covariates) from a statsmodels logistic regression (numeric covariates)."""
    x = pd.DataFrame(covariates).reset_index(drop=True)
    try:
        x = x.astype(float)
    except (TypeError, ValueError):
        raise DelicaiteError("propensity covariates must be numeric (encode categorical ones first)") from None
    if x.isna().any().any():
        cols = ", ".join(map(str, x.columns[x.isna().any()]))
        raise DelicaiteError(f"propensity covariates have missing values in {cols}; impute or drop them first")
    a = (np.asarray(received, dtype=object).astype(str) == treated).astype(int)
    if len(a) != len(x):
        raise DelicaiteError(f"covariates have {len(x)} rows but there are {len(a)} patients")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.Logit(a, sm.add_constant(x, has_constant="add")).fit(disp=0, maxiter=200)
    if not fit.mle_retvals.get("converged", True):
        raise DelicaiteError("the propensity model did not converge (a covariate may decide the therapy "
                             "perfectly); use fewer covariates or give the propensity")
    return np.asarray(fit.predict(), dtype=float)


def _inputs(outcome_good, received, recommended, propensity, covariates, treated, control):
    therapies = (control, treated)
    y = np.asarray(outcome_good, dtype=float)
    if not np.isin(y, (0.0, 1.0)).all():
        raise DelicaiteError("outcome_good must be 1 (good outcome, e.g. disease control) or 0 for every patient")
    a = _labels(received, "received therapy", therapies)
    d = _labels(recommended, "recommended", therapies, allow_other=True)
    description = "given"
    if propensity is None:
        if covariates is None:
            raise DelicaiteError("give either the propensity or covariates to fit it from")
        propensity = fit_propensity(a, covariates, treated)
        description = f"fitted (logistic regression on {pd.DataFrame(covariates).shape[1]} covariates)"
    e = np.asarray(propensity, dtype=float)
    if not (len(y) == len(a) == len(d) == len(e)):
        raise DelicaiteError(f"need one value per patient: outcome {len(y)}, received {len(a)}, "
                             f"recommended {len(d)}, propensity {len(e)}")
    if not (np.isfinite(e).all() and (e > 0).all() and (e < 1).all()):
        raise DelicaiteError("propensities must lie strictly inside (0, 1); a patient who could only have "
                             "received one therapy tells nothing about the other (check the propensity model)")
    p_received = np.where(a == treated, e, 1.0 - e)
    return y, a, d, p_received, description


def _weights(a: np.ndarray, d: np.ndarray, p_received: np.ndarray, therapies) -> np.ndarray:
    follows = a == d
    no_preference = ~np.isin(d, therapies)
    return np.where(no_preference, 1.0, follows / p_received)


def _estimate(y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Hájek, HT) along the last axis; Hájek is NaN where nobody follows the rule."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * y).sum(axis=-1) / w.sum(axis=-1), (w * y).mean(axis=-1)


def _bootstrap(y, w, n_boot, level, seed) -> tuple[float, float]:
    if not 0 < level < 1:
        raise DelicaiteError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    if int(n_boot) < 1:
        raise DelicaiteError(f"n_boot must be at least 1, got {n_boot}")
    idx = np.random.default_rng(seed).integers(0, len(y), size=(int(n_boot), len(y)))
    hajek, _ = _estimate(y[idx], w[idx])
    lo, hi = np.nanpercentile(hajek, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def paired_difference(y, a, d_one, d_other, p_received, n_boot, level, seed, therapies) -> dict:
    """V(d_one) − V(d_other) (Hájek) with a percentile CI from the same bootstrap resamples of patients
    for both rules (paired: the resampling noise they share cancels)."""
    w_one, w_other = _weights(a, d_one, p_received, therapies), _weights(a, d_other, p_received, therapies)
    point = _estimate(y, w_one)[0] - _estimate(y, w_other)[0]
    idx = np.random.default_rng(seed).integers(0, len(y), size=(int(n_boot), len(y)))
    replicates = _estimate(y[idx], w_one[idx])[0] - _estimate(y[idx], w_other[idx])[0]
    lo, hi = np.nanpercentile(replicates, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return {"value": float(point), "lo": float(lo), "hi": float(hi), "scheme": "paired percentile bootstrap of patients"}


def _value(y, a, d, p_received, n_boot, level, seed, therapies) -> dict:
    w = _weights(a, d, p_received, therapies)
    hajek, ht = _estimate(y, w)
    if not np.isfinite(hajek):
        raise DelicaiteError("no patient received the recommended therapy; the policy's value cannot be estimated")
    lo, hi = _bootstrap(y, w, n_boot, level, seed)
    return {"value": float(hajek), "lo": lo, "hi": hi, "n_followed": int((a == d).sum()), "value_ht": float(ht),
            "n_no_preference": int((~np.isin(d, therapies)).sum()), "estimator": "IPW (Hájek)"}


def ipw_policy_value(outcome_good, received, recommended, propensity, covariates=None, n_boot: int = 1000,
                     level: float = 0.95, seed=0, treated: str = "HAIC", control: str = "TACE") -> dict:
    """IPW estimate of the good-outcome rate if everybody followed `recommended`.

    outcome_good: 1 = good outcome (disease control, i.e. 1 − PD); received, recommended: therapy labels;
    propensity: P(received == treated | x) per patient, or None to fit it on `covariates`.
    Returns dict(value (Hájek), lo, hi (bootstrap), n_followed, value_ht (Horvitz–Thompson),
    n_no_preference, estimator, propensity (how it was obtained)).
    """
    y, a, d, p_received, description = _inputs(outcome_good, received, recommended, propensity, covariates,
                                               treated, control)
    return {**_value(y, a, d, p_received, n_boot, level, seed, (control, treated)), "propensity": description}


def compare_policies(outcome_good, received, recommended, propensity, covariates=None, n_boot: int = 1000,
                     level: float = 0.95, seed=0, treated: str = "HAIC", control: str = "TACE",
                     others: dict | None = None) -> dict:
    """{policy: ipw_policy_value-style dict} for "recommended", "all TACE", "all HAIC", every rule of
    ``others`` ({name: recommendation per patient}) and "as treated" (the observed rate, mean of
    outcome_good). The same seed gives every policy the same resamples; each policy other than
    "recommended" also gets ``difference``: recommended minus it, with a paired bootstrap CI."""
    y, a, d, p_received, description = _inputs(outcome_good, received, recommended, propensity, covariates,
                                               treated, control)
    therapies = (control, treated)
    rules = {"recommended": d, f"all {control}": np.full(len(y), control), f"all {treated}": np.full(len(y), treated)}
    for name, rule in (others or {}).items():
        rules[name] = _labels(rule, name, therapies, allow_other=True)
    out = {name: {**_value(y, a, rule, p_received, n_boot, level, seed, therapies), "propensity": description}
           for name, rule in rules.items()}
    for name, rule in rules.items():
        if name != "recommended":
            out[name]["difference"] = paired_difference(y, a, d, rule, p_received, n_boot, level, seed, therapies)
    lo, hi = _bootstrap(y, np.ones_like(y), n_boot, level, seed)
    out["as treated"] = {"value": float(y.mean()), "lo": lo, "hi": hi, "n_followed": len(y), "value_ht": float(y.mean()),
                         "n_no_preference": 0, "estimator": "observed rate", "propensity": "not used"}
    return out
