"""The simple rules the report sets beside DELICAITE's recommendation, fitted on the training set only.

- linear logistic: the linear modified-covariate logistic regression, PD on the standardised clinical
  covariates z, T/2 and T·z/2 (nearly unpenalised, inverse-propensity weighted): h = c + dᵀz;
- Tian lasso: DELICAITELib's TianLasso (lasso on T·z/2 with a cross-fitted main-effect offset);
- HAIC if PVTT: the study's strongest single covariate as a rule;
- best single covariate: the covariate, threshold (a training quantile) and direction with the highest
  inverse-propensity-weighted disease-control rate on the training set.

Each gives every patient of the frame a recommendation, and the two linear ones an h as well. They use
the clinical covariates (missing values at the training medians); DELICAITE may use image features too.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ..clinical import encoded_columns
from ..recommendation import HAIC, TACE, recommend

RULE_QUANTILES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
PROPENSITY_CLIP = (0.05, 0.95)
LINEAR, TIAN, PVTT, SINGLE = "linear logistic", "Tian lasso", "HAIC if PVTT", "best single covariate"
BASELINE_TEXT = {
    LINEAR: "linear modified-covariate logistic regression on the clinical covariates (training set)",
    TIAN: "Tian's modified-covariate lasso on the clinical covariates (training set)",
    PVTT: "HAIC for patients with PVTT, TACE for the others",
}


def _covariates(frame: pd.DataFrame, medians: pd.Series) -> pd.DataFrame:
    x = frame[medians.index].astype(float)
    return x.fillna(medians)


def _ipw(x: np.ndarray, haic: np.ndarray) -> np.ndarray:
    e = LogisticRegression(max_iter=5000).fit(x, haic).predict_proba(x)[:, 1].clip(*PROPENSITY_CLIP)
    return np.where(haic, haic.mean() / e, (1 - haic.mean()) / (1 - e))


def fit_baselines(frame: pd.DataFrame, training: np.ndarray) -> dict[str, pd.DataFrame]:
    """{name: table with ``recommendation`` (and ``h`` for the linear rules), one row per row of ``frame``},
    every rule fitted on the rows ``training`` with a known PD."""
    rows = training & frame["pd"].notna().to_numpy()
    columns = [c for c in encoded_columns() if c in frame and frame.loc[rows, c].notna().any()]
    medians = frame.loc[rows, columns].astype(float).median()
    x_all = _covariates(frame, medians)
    x_train = x_all[rows]
    keep = x_train.std() > 0
    x_all, x_train = x_all.loc[:, keep], x_train.loc[:, keep]
    mean, scale = x_train.mean(), x_train.std()
    z_all, z_train = ((x_all - mean) / scale).to_numpy(), ((x_train - mean) / scale).to_numpy()
    haic = (frame.loc[rows, "therapy"] == HAIC).to_numpy()
    t_train = np.where(haic, 1.0, -1.0)
    y = frame.loc[rows, "pd"].to_numpy(int)
    w = _ipw(z_train, haic)
    out = {LINEAR: _linear_logistic(z_train, t_train, y, w, z_all)}
    out[TIAN] = _tian(x_train, frame.loc[rows, "therapy"].to_numpy(), y, x_all)
    if "pvtt" in x_all:
        out[PVTT] = _table(np.where(x_all["pvtt"].to_numpy() >= 0.5, HAIC, TACE))
    out[SINGLE] = _best_single(x_train, haic, y, w, x_all)
    return out


def _table(recommendation, h=None) -> pd.DataFrame:
    table = pd.DataFrame({"recommendation": np.asarray(recommendation, dtype=object)})
    if h is not None:
        table["h"] = np.asarray(h, dtype=float)
    return table


def _linear_logistic(z, t, y, w, z_all) -> pd.DataFrame:
    design = np.column_stack([z, t / 2, t[:, None] * z / 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = LogisticRegression(C=1e4, max_iter=10000).fit(design, y, sample_weight=w)
    interaction = fit.coef_[0][z.shape[1]:]
    h = interaction[0] + z_all @ interaction[1:]
    return _table(recommend(h), h)


def _tian(x_train: pd.DataFrame, therapy, y, x_all: pd.DataFrame) -> pd.DataFrame:
    from ..model import TianLasso

    model = TianLasso(propensity_weighting=True, n_bootstrap=0).fit(x_train, therapy, y)
    h = model.interaction_score(x_all)
    return _table(recommend(h), h)


def _best_single(x_train: pd.DataFrame, haic: np.ndarray, y: np.ndarray, w: np.ndarray, x_all) -> pd.DataFrame:
    control = 1 - y
    best = (-np.inf, None)
    for column in x_train.columns:
        values = x_train[column].to_numpy()
        for cut in sorted(set(np.quantile(values, RULE_QUANTILES))):
            for above in (True, False):
                rule = values > cut if above else values <= cut
                follows = rule == haic
                value = np.sum(w * follows * control) / max(np.sum(w * follows), 1e-12)
                if value > best[0]:
                    best = (value, (column, cut, above))
    column, cut, above = best[1]
    values = x_all[column].to_numpy()
    table = _table(np.where(values > cut if above else values <= cut, HAIC, TACE))
    table.attrs["rule"] = f"HAIC when {column} {'>' if above else '≤'} {cut:g}, else TACE"
    return table
