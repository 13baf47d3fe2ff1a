"""Classification statistics of a risk score: AUC with a stratified bootstrap CI, a Youden threshold
fixed on one set and applied to another, metrics at that threshold with CIs, and calibration.

Convention: y == 1 is the event (PD), p is its predicted probability (any score for the AUC), and a
patient is called positive when p >= threshold. The bootstrap resamples positives and negatives
separately (stratified), so every replicate keeps the class sizes and the AUC is always defined;
CIs are percentile intervals of the replicates, from a seeded numpy Generator.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import logit
from sklearn.metrics import roc_curve

from ..errors import DelicaiteError
from .delong import check_binary_outcome

METRICS = ("acc", "sen", "spe", "ppv", "npv", "f1")


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise DelicaiteError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")


def _check(y, p, name: str = "p") -> tuple[np.ndarray, np.ndarray]:
    y = check_binary_outcome(y)
    p = np.asarray(p, dtype=float)
    if p.shape != y.shape:
        raise DelicaiteError(f"{name} has {p.size} values but y has {y.size}; give one prediction per patient")
    if not np.isfinite(p).all():
        raise DelicaiteError(f"{name} has {int((~np.isfinite(p)).sum())} missing or infinite values; drop those patients")
    return y, p


def _auc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUC per row for positive scores pos (B, m) and negative scores neg (B, n) (ties count ½)."""
    from scipy.stats import rankdata

    m, n = pos.shape[1], neg.shape[1]
    ranks = rankdata(np.concatenate([pos, neg], axis=1), axis=1)  # midranks
    return (ranks[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)


def _stratified_indices(y: np.ndarray, n_boot: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """(B, m) resampled indices of positives and (B, n) of negatives, with replacement."""
    if int(n_boot) < 1:
        raise DelicaiteError(f"n_boot must be at least 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    return (pos[rng.integers(0, len(pos), size=(int(n_boot), len(pos)))],
            neg[rng.integers(0, len(neg), size=(int(n_boot), len(neg)))])


def _percentile(values: np.ndarray, level: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():  # an all-NaN column (metric never defined) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanpercentile(values, 100 * (1 - level) / 2, axis=axis)
        hi = np.nanpercentile(values, 100 * (1 + level) / 2, axis=axis)
    return lo, hi


def bootstrap_auc_ci(y, p, n_boot: int = 2000, level: float = 0.95, seed=0) -> tuple[float, float, float]:
    """(auc, lo, hi): the AUC on all patients and a stratified percentile bootstrap CI."""
    _check_level(level)
    y, p = _check(y, p)
    auc = float(_auc_rows(p[None, y == 1], p[None, y == 0])[0])
    ipos, ineg = _stratified_indices(y, n_boot, seed)
    lo, hi = _percentile(_auc_rows(p[ipos], p[ineg]), level)
    return auc, float(lo), float(hi)


def auc_or_none(y, p) -> float | None:
    """ROC AUC of scores ``p`` for binary ``y``, or None when ``y`` holds one class only (no AUC exists)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None


def youden_threshold(y, p) -> float:
    """The threshold maximising sensitivity + specificity − 1 (Youden's J); positive means p >= threshold.

    Fix it on the training set and pass it to `threshold_metrics` on the others. Among equal J the
    highest threshold (fewest positives) is taken.
    """
    y, p = _check(y, p)
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    finite = np.isfinite(thresholds)  # sklearn prepends +inf (nobody positive)
    j = np.where(finite, tpr - fpr, -np.inf)
    return float(thresholds[int(np.argmax(j))])


def _metrics_from_counts(tp, fp, tn, fn) -> dict:
    """Metrics from confusion counts (arrays allowed); NaN where a denominator is 0."""
    tp, fp, tn, fn = (np.asarray(v, dtype=float) for v in (tp, fp, tn, fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "acc": (tp + tn) / (tp + fp + tn + fn),
            "sen": tp / (tp + fn),
            "spe": tn / (tn + fp),
            "ppv": tp / (tp + fp),
            "npv": tn / (tn + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
        }


def confusion_counts(y, p, threshold: float) -> dict:
    """{tp, fp, tn, fn} with positive = p >= threshold."""
    y, p = _check(y, p)
    pred = p >= float(threshold)
    return {"tp": int((pred & (y == 1)).sum()), "fp": int((pred & (y == 0)).sum()),
            "tn": int((~pred & (y == 0)).sum()), "fn": int((~pred & (y == 1)).sum())}


def threshold_metrics(y, p, threshold: float) -> dict:
    """{acc, sen, spe, ppv, npv, f1} at a fixed threshold (positive = p >= threshold); NaN if undefined."""
    c = confusion_counts(y, p, threshold)
    return {k: float(v) for k, v in _metrics_from_counts(c["tp"], c["fp"], c["tn"], c["fn"]).items()}


BOOTSTRAP_SCHEMES = ("stratified", "patient")


def threshold_metrics_ci(y, p, threshold: float, n_boot: int = 2000, level: float = 0.95, seed=0,
                         scheme: str = "stratified") -> dict:
    """{metric: (value, lo, hi)} for acc, sen, spe, ppv, npv, f1 at a FIXED threshold (not re-tuned per
    replicate), with percentile bootstrap CIs. ``scheme`` "stratified" resamples PD and non-PD patients
    separately (class sizes, hence prevalence, held fixed: right for SEN and SPE, too narrow for PPV and
    NPV, which depend on the prevalence); "patient" resamples patients (prevalence varies with them)."""
    _check_level(level)
    y, p = _check(y, p)
    if scheme not in BOOTSTRAP_SCHEMES:
        raise DelicaiteError(f"bootstrap scheme must be one of {', '.join(BOOTSTRAP_SCHEMES)}, got {scheme!r}")
    point = threshold_metrics(y, p, threshold)
    pred = (p >= float(threshold)).astype(float)
    if scheme == "stratified":
        ipos, ineg = _stratified_indices(y, n_boot, seed)
        tp, fp = pred[ipos].sum(axis=1), pred[ineg].sum(axis=1)
        boot = _metrics_from_counts(tp, fp, ineg.shape[1] - fp, ipos.shape[1] - tp)
    else:
        rows = np.random.default_rng(seed).integers(0, len(y), size=(int(n_boot), len(y)))
        positive, event = pred[rows], y[rows]
        tp, fp = (positive * event).sum(axis=1), (positive * (1 - event)).sum(axis=1)
        boot = _metrics_from_counts(tp, fp, ((1 - positive) * (1 - event)).sum(axis=1), ((1 - positive) * event).sum(axis=1))
    out = {}
    for name in METRICS:
        lo, hi = _percentile(boot[name], level)
        out[name] = (point[name], float(lo), float(hi))
    return out


def calibration(y, p, n_bins: int = 10, strategy: str = "quantile", eps: float = 1e-6) -> dict:
    """Calibration of predicted probabilities p for outcome y.

    Returns dict(bins: DataFrame [mean_predicted, observed, n] (bins of equal size for "quantile",
    equal width for "uniform"), brier, intercept, slope). intercept: calibration-in-the-large, the
    intercept of a logistic model of y with logit(p) as offset (0 = right on average); slope: the
    coefficient of logit(p) in a logistic model of y on it (1 = ideal, < 1 = too extreme). p is clipped
    to [eps, 1 − eps] for the logit only.
    """
    y, p = _check(y, p)
    if ((p < 0) | (p > 1)).any():
        raise DelicaiteError("calibration needs probabilities in [0, 1]; got values outside (is p a score, not a probability?)")
    if strategy not in ("quantile", "uniform"):
        raise DelicaiteError(f"calibration strategy must be 'quantile' or 'uniform', got {strategy!r}")
    if int(n_bins) < 1:
        raise DelicaiteError(f"n_bins must be at least 1, got {n_bins}")
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, int(n_bins) + 1)))
    else:
        edges = np.linspace(0, 1, int(n_bins) + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    frame = pd.DataFrame({"bin": which, "p": p, "y": y})
    bins = frame.groupby("bin").agg(mean_predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
    bins = bins.reset_index(drop=True)
    lp = logit(np.clip(p, eps, 1 - eps))
    citl = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit()
    slope_fit = sm.GLM(y, sm.add_constant(lp, has_constant="add"), family=sm.families.Binomial()).fit()
    return {"bins": bins, "brier": float(np.mean((p - y) ** 2)),
            "intercept": float(citl.params[0]), "slope": float(slope_fit.params[1])}
