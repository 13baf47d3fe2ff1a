"""The study's comparators: clinical logistic regression, gradient boosting ("radiomics GBM") and a
one-hidden-layer MLP. scikit-learn fits them; prediction runs from plain arrays (coefficients, tree
nodes, layer weights), so a saved comparator is numbers only and loading never unpickles anything.

Inputs: the chosen columns of a design frame plus `therapy_haic` (1 HAIC, 0 TACE) — therapy must be an
input, since the PD rate differs so much between therapies. Missing values take the training median,
then every column is standardised with the training mean and standard deviation.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from ...errors import DelicaiteError

THERAPY_COLUMN = "therapy_haic"
KINDS = ("logistic", "gbm", "mlp")

# Small grids, searched on the validation share of the training set only (quick: for tests and trials).
GRIDS = {
    "logistic": {"C": [0.01, 0.1, 1.0, 10.0]},
    "gbm": {"n_estimators": [100, 300], "learning_rate": [0.03, 0.1], "max_depth": [2, 3]},
    "mlp": {"hidden_units": [16, 64], "alpha": [1e-3, 1e-1], "learning_rate_init": [1e-3, 1e-2]},
}
QUICK_GRIDS = {
    "logistic": {"C": [0.1, 1.0]},
    "gbm": {"n_estimators": [60], "learning_rate": [0.05, 0.1], "max_depth": [2, 3]},
    "mlp": {"hidden_units": [16, 64], "alpha": [1e-2], "learning_rate_init": [1e-3, 1e-2]},
}


def grid(kind: str, quick: bool = False) -> list[dict]:
    """Every hyper-parameter combination of `kind`'s grid, in a fixed order (ties keep the first)."""
    spec = (QUICK_GRIDS if quick else GRIDS)[kind]
    return [dict(zip(spec, values)) for values in itertools.product(*spec.values())]


def input_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The raw (unscaled) inputs: `columns` of `frame`, `therapy_haic` computed from frame["therapy"]."""
    out = np.empty((len(frame), len(columns)), dtype=float)
    for j, col in enumerate(columns):
        if col == THERAPY_COLUMN:
            therapy = frame["therapy"].astype(str)
            if not therapy.isin(["TACE", "HAIC"]).all():
                raise DelicaiteError("therapy must be 'TACE' or 'HAIC' for every patient")
            out[:, j] = (therapy == "HAIC").to_numpy(float)
        elif col not in frame:
            raise DelicaiteError(f"the design frame lacks column {col} that the comparator was trained on")
        else:
            out[:, j] = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
    return out


@dataclass
class Comparator:
    """A fitted comparator: its preprocessing (training medians, mean, scale) and its model arrays."""

    name: str
    kind: str
    columns: list[str]
    medians: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    params: dict
    arrays: dict
    threshold: float | None = None
    info: dict = field(default_factory=dict)

    def standardised(self, frame: pd.DataFrame) -> np.ndarray:
        x = input_matrix(frame, self.columns)
        x = np.where(np.isnan(x), self.medians, x)
        return (x - self.mean) / self.scale

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        """P(PD | inputs, received therapy) for each row of a design frame."""
        return PREDICT[self.kind](self.arrays, self.params, self.standardised(frame))


def fit_preprocessing(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(medians, mean, scale) of the training rows; an all-missing column imputes 0, a constant one scales by 1."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column
        medians = np.nanmedian(x, axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    filled = np.where(np.isnan(x), medians, x)
    mean, scale = filled.mean(axis=0), filled.std(axis=0)
    return medians, mean, np.where(scale > 1e-12, scale, 1.0)


# ------------------------------------------------------------------------------- fit (scikit-learn)

def _fit_logistic(xs, y, params, seed):
    est = LogisticRegression(C=params["C"], max_iter=5000).fit(xs, y)
    return est, {"coef": est.coef_.ravel().astype(float), "intercept": est.intercept_.astype(float)}


def _fit_gbm(xs, y, params, seed):
    est = GradientBoostingClassifier(n_estimators=params["n_estimators"], learning_rate=params["learning_rate"],
                                     max_depth=params["max_depth"], random_state=seed).fit(xs, y)
    return est, gbm_arrays(est)


def _fit_mlp(xs, y, params, seed, epochs: int = 120):
    est = MLPClassifier(hidden_layer_sizes=(params["hidden_units"],), alpha=params["alpha"],
                        learning_rate_init=params["learning_rate_init"], max_iter=epochs, batch_size=32,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget, as in the study
        est.fit(xs, y)
    return est, {"W0": est.coefs_[0], "b0": est.intercepts_[0], "W1": est.coefs_[1], "b1": est.intercepts_[1]}


def fit_estimator(kind: str, xs: np.ndarray, y: np.ndarray, params: dict, seed: int, epochs: int = 120):
    """(scikit-learn estimator, arrays to predict from) of one comparator fitted on standardised xs."""
    if kind == "mlp":
        return _fit_mlp(xs, y, params, seed, epochs)
    return {"logistic": _fit_logistic, "gbm": _fit_gbm}[kind](xs, y, params, seed)


def gbm_arrays(est: GradientBoostingClassifier) -> dict:
    """The fitted trees of a binary GradientBoostingClassifier as flat node arrays (child indices global)."""
    if est.n_classes_ != 2 or est.init_ is None or not hasattr(est.init_, "class_prior_"):
        raise DelicaiteError("only a binary GradientBoostingClassifier with the default prior init can be stored")
    feats, thresholds, lefts, rights, values, roots = [], [], [], [], [], []
    offset = 0
    for tree in est.estimators_[:, 0]:
        t = tree.tree_
        roots.append(offset)
        leaf = t.children_left == -1
        feats.append(np.where(leaf, 0, t.feature))
        thresholds.append(t.threshold)
        lefts.append(np.where(leaf, -1, t.children_left + offset))
        rights.append(np.where(leaf, -1, t.children_right + offset))
        values.append(t.value[:, 0, 0])
        offset += t.node_count
    cat = lambda parts, dtype: np.concatenate(parts).astype(dtype)  # noqa: E731
    return {"feature": cat(feats, np.int64), "threshold": cat(thresholds, float), "left": cat(lefts, np.int64),
            "right": cat(rights, np.int64), "value": cat(values, float), "roots": np.array(roots, np.int64),
            "init_raw": np.array([logit(est.init_.class_prior_[1])], float),
            "learning_rate": np.array([est.learning_rate], float)}


# ------------------------------------------------------------------------------- predict (arrays)

def logistic_proba(arrays: dict, params: dict, xs: np.ndarray) -> np.ndarray:
    return expit(xs @ arrays["coef"] + arrays["intercept"][0])


def gbm_proba(arrays: dict, params: dict, xs: np.ndarray) -> np.ndarray:
    # scikit-learn's trees compare float32 inputs with float64 thresholds; do the same for equal leaves
    x = xs.astype(np.float32).astype(float)
    rows = np.arange(len(x))
    feature, threshold, left, right = arrays["feature"], arrays["threshold"], arrays["left"], arrays["right"]
    raw = np.full(len(x), arrays["init_raw"][0])
    lr = arrays["learning_rate"][0]
    for root in arrays["roots"]:
        node = np.full(len(x), root)
        while True:
            inner = left[node] != -1
            if not inner.any():
                break
            go_left = x[rows, feature[node]] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        raw += lr * arrays["value"][node]  # stage by stage, as scikit-learn sums them
    return expit(raw)


def mlp_proba(arrays: dict, params: dict, xs: np.ndarray) -> np.ndarray:
    hidden = np.maximum(xs @ arrays["W0"] + arrays["b0"], 0.0)
    return expit(hidden @ arrays["W1"] + arrays["b1"]).ravel()


PREDICT = {"logistic": logistic_proba, "gbm": gbm_proba, "mlp": mlp_proba}
