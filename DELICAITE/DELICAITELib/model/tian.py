"""Tian's modified covariate method, lasso-penalised, with efficiency augmentation (Tian, Alizadeh,
Gentles & Tibshirani, JASA 2014): the linear root of DELICAITE's interaction model, as an estimator.

    logit P(PD | x, T) = ĝ(x) + T · (β0 + βᵀz) / 2,   z = x standardised,  T = −1 TACE / +1 HAIC

so h(x) = β0 + βᵀz. The main effect ĝ is fitted first (an L2 logistic regression of PD on z, both
therapies together) and enters as a fixed offset: out of fold (cross-fitted) while β is fitted, so the
offset never carries the patient's own outcome, and on every patient for prediction (the offset is
how R's `personalized` package augments a binomial fit). β is an L1 (lasso) logistic regression on the
modified covariates T·z/2 with that offset (β0 unpenalised), its penalty chosen by K-fold
cross-validated deviance along a warm-started path; the interaction needs no main effect of its own.
The lasso is solved by proximal Newton steps with cyclic coordinate descent (glmnet's algorithm,
lasso.py): statsmodels' penalised GLM gives the same β (a test checks it) but 100 times slower, and
glum, the well-kept fast library, would bring pyarrow into Slicer's Python. In observational data every patient is weighted by the stabilised inverse
propensity of the therapy received. Bootstrap refits at the chosen penalty give the ensemble spread of
h shown beside it (like InteractionModel's, it is the estimator's spread, not a confidence interval).

It has InteractionModel's prediction API, so a model bundle serves it: a site with a hundred patients
may prefer it to the network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from ..errors import DelicaiteError
from ..recommendation import recommend
from .interaction import H_PERCENTILES, THERAPY_CODE, encode_therapy
from .lasso import deviance, lasso_logistic, lasso_path, largest_penalty
from .propensity import fit_propensity, propensity_haic, stabilised_weights


class TianLasso(BaseEstimator):
    """Parameters: n_folds (cross-fitting of ĝ and the choice of the penalty), n_penalties (the lasso
    path's length, from the smallest penalty that keeps β at zero down by 10⁻³), main_effect_c (inverse
    L2 strength of ĝ's logistic regression), propensity_weighting, n_bootstrap (refits for the spread of
    h), cutoff (c of the recommendation rule), random_state."""

    def __init__(self, n_folds=5, n_penalties=15, main_effect_c=1.0, propensity_weighting=False, n_bootstrap=50,
                 cutoff=0.0, random_state=0):
        self.n_folds = n_folds
        self.n_penalties = n_penalties
        self.main_effect_c = main_effect_c
        self.propensity_weighting = propensity_weighting
        self.n_bootstrap = n_bootstrap
        self.cutoff = cutoff
        self.random_state = random_state

    # ----------------------------------------------------------------------------------------- fit
    def fit(self, X, therapy, y, sample_weight=None):
        x = self._matrix(X, fitting=True)
        n = len(x)
        t = encode_therapy(therapy, n)
        y = np.asarray(y, dtype=float).ravel()
        if len(y) != n or not np.isin(y, (0.0, 1.0)).all():
            raise DelicaiteError("y must be PD coded 1 or 0 for every row of X, without missing values")
        for name, code in THERAPY_CODE.items():
            if not (t == code).any():
                raise DelicaiteError(f"training needs patients of both therapies; none received {name}")
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float).ravel()
        self.scaler_mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scaler_scale_ = np.where(scale > 1e-12, scale, 1.0)
        z = (x - self.scaler_mean_) / self.scaler_scale_
        self.propensity_coef_, self.propensity_intercept_ = None, None
        if self.propensity_weighting:
            self.propensity_coef_, self.propensity_intercept_ = fit_propensity(z, t, w)
            w = w * stabilised_weights(t, propensity_haic(z, self.propensity_coef_, self.propensity_intercept_))
        w = w / w.mean()

        folds = self._folds(y, t)
        offset = np.zeros(n)
        for train_rows, held_out in folds:  # ĝ out of fold: the offset never saw the patient's PD
            offset[held_out] = self._main_effect(z[train_rows], y[train_rows], w[train_rows]).decision_function(z[held_out])
        main = self._main_effect(z, y, w)
        self.main_coef_, self.main_intercept_ = main.coef_.ravel().astype(float), float(main.intercept_[0])

        modified = np.column_stack([t / 2.0, t[:, None] * z / 2.0])
        penalties = largest_penalty(modified, y, w, offset) * np.geomspace(1.0, 1e-3, int(self.n_penalties))
        held_out_deviance = np.zeros(len(penalties))
        for train_rows, held_out in folds:
            path = lasso_path(modified[train_rows], y[train_rows], w[train_rows], offset[train_rows], penalties)
            held_out_deviance += [deviance(modified[held_out] @ beta + offset[held_out], y[held_out], w[held_out])
                                  for beta in path]
        best = int(np.argmin(held_out_deviance))
        self.penalty_ = float(penalties[best])
        self.cv_deviance_ = {f"{p:.4g}": float(d) for p, d in zip(penalties, held_out_deviance)}
        self.coef_ = lasso_path(modified, y, w, offset, penalties[:best + 1])[-1]
        rng = np.random.default_rng(self.random_state)
        members = []
        for _ in range(int(self.n_bootstrap)):
            rows = rng.integers(0, n, size=n)
            members.append(lasso_logistic(modified[rows], y[rows], w[rows], offset[rows], self.penalty_, start=self.coef_))
        self.member_coefs_ = np.array(members) if members else self.coef_[None, :]
        self._summarise(z, t, y)
        return self

    def _folds(self, y, t):
        strata = (y * 2 + (t > 0)).astype(int)
        k = int(min(self.n_folds, np.bincount(strata).min())) if len(set(strata)) > 1 else 2
        splitter = StratifiedKFold(n_splits=max(k, 2), shuffle=True, random_state=self.random_state)
        return list(splitter.split(np.zeros(len(y)), strata))

    def _main_effect(self, z, y, w) -> LogisticRegression:
        return LogisticRegression(C=float(self.main_effect_c), max_iter=5000).fit(z, y, sample_weight=w)

    def _summarise(self, z, t, y):
        h = self._member_h(z).mean(axis=0)
        self.training_h_ = np.sort(self._h(z))
        haic = t > 0
        self.training_summary_ = {
            "n": int(len(t)), "n_tace": int((~haic).sum()), "n_haic": int(haic.sum()),
            "pd_rate_tace": float(y[~haic].mean()), "pd_rate_haic": float(y[haic].mean()),
            "h_mean": float(h.mean()), "h_std": float(h.std()),
            "h_quantiles": [float(v) for v in np.percentile(self.training_h_, H_PERCENTILES)],
            "h_quantiles_at_percent": list(H_PERCENTILES),
            "propensity_weighted": bool(self.propensity_weighting), "penalty": self.penalty_,
            "nonzero_interactions": int(np.count_nonzero(self.coef_[1:])),
        }

    # ----------------------------------------------------------------------------------- prediction
    def _matrix(self, X, fitting: bool) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            if fitting:
                self.feature_names_in_ = np.array([str(c) for c in X.columns], dtype=object)
            elif getattr(self, "feature_names_in_", None) is not None:
                missing = [c for c in self.feature_names_in_ if c not in X.columns]
                if missing:
                    raise DelicaiteError(f"X lacks feature column(s) the model was trained on: {', '.join(missing)}")
                X = X[list(self.feature_names_in_)]
            x = X.to_numpy(dtype=float)
        else:
            if fitting:
                self.feature_names_in_ = None
            x = np.asarray(X, dtype=float)
        if x.ndim != 2 or len(x) == 0:
            raise DelicaiteError(f"X must be a non-empty 2-D table, got shape {x.shape}")
        if fitting:
            self.n_features_in_ = x.shape[1]
        elif x.shape[1] != self.n_features_in_:
            raise DelicaiteError(f"X has {x.shape[1]} columns but the model was trained on {self.n_features_in_}")
        if not np.all(np.isfinite(x)):
            raise DelicaiteError("X has missing (NaN) or infinite values")
        return x

    def _z(self, X) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise DelicaiteError("the Tian lasso is not fitted: call fit() or load a model file first")
        return (self._matrix(X, fitting=False) - self.scaler_mean_) / self.scaler_scale_

    def _h(self, z) -> np.ndarray:
        return self.coef_[0] + z @ self.coef_[1:]

    def _member_h(self, z) -> np.ndarray:
        return self.member_coefs_[:, :1] + self.member_coefs_[:, 1:] @ z.T

    def predict_all(self, X, alpha: float = 0.1) -> pd.DataFrame:
        """g, h with the spread of the bootstrap refits (h_lower, h_upper), both risks, training
        percentile and recommendation, per row (InteractionModel.predict_all's columns)."""
        if not 0.0 < alpha < 1.0:
            raise DelicaiteError(f"alpha must lie strictly between 0 and 1, got {alpha}")
        z = self._z(X)
        g, h = z @ self.main_coef_ + self.main_intercept_, self._h(z)
        members = self._member_h(z)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame({
            "g": g, "h": h,
            "h_lower": np.minimum(np.percentile(members, 100 * alpha / 2, axis=0), h),
            "h_upper": np.maximum(np.percentile(members, 100 * (1 - alpha / 2), axis=0), h),
            "p_pd_tace": expit(g - h / 2.0), "p_pd_haic": expit(g + h / 2.0),
            "training_percentile": np.atleast_1d(self.h_percentile(h)), "recommendation": recommend(h, self.cutoff),
        }, index=index)

    def interaction_score(self, X, return_interval: bool = False, alpha: float = 0.1):
        table = self.predict_all(X, alpha)
        h = table["h"].to_numpy()
        return (h, table["h_lower"].to_numpy(), table["h_upper"].to_numpy()) if return_interval else h

    def predict_risk(self, X, therapy) -> np.ndarray:
        table = self.predict_all(X)
        t = encode_therapy(therapy, len(table))
        return np.where(t > 0, table["p_pd_haic"], table["p_pd_tace"])

    def predict_risks(self, X) -> pd.DataFrame:
        return self.predict_all(X)[["p_pd_tace", "p_pd_haic"]]

    def recommend(self, X) -> np.ndarray:
        return self.predict_all(X)["recommendation"].to_numpy(dtype=object)

    def h_percentile(self, h):
        ref = self.training_h_
        h_arr = np.asarray(h, dtype=float)
        rank = (np.searchsorted(ref, h_arr, side="left") + np.searchsorted(ref, h_arr, side="right")) / 2.0
        pct = 100.0 * rank / len(ref)
        return float(pct) if pct.ndim == 0 else pct

    def explain(self, X, steps: int = 0) -> pd.DataFrame:
        """Per-feature contribution to h: β_j·z_j (h is linear); they add up to h − β0 exactly, and
        β0 (the score of the training mean) is in ``result.attrs["baseline_h"]``."""
        z = self._z(X)
        names = list(self.feature_names_in_) if self.feature_names_in_ is not None else [f"x{i}" for i in range(z.shape[1])]
        result = pd.DataFrame(z * self.coef_[1:], columns=names, index=X.index if isinstance(X, pd.DataFrame) else None)
        result.attrs["baseline_h"] = float(self.coef_[0])
        return result
