"""The Tian lasso's model files: coefficients in weights.npz, the rest in model.json (checksummed, no pickle)."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from .. import __version__ as DELICAITE_VERSION
from ..errors import ModelFileError
from ..storage import METADATA_FILE, read_artifact, write_artifact
from .tian import TianLasso

TIAN_FORMAT, TIAN_VERSION = "delicaite-tian-lasso", 1
ARRAYS = ("coef_", "member_coefs_", "main_coef_", "scaler_mean_", "scaler_scale_", "training_h_")


def save_tian_lasso(model: TianLasso, directory, note: str | None = None) -> Path:
    if not hasattr(model, "coef_"):
        raise ModelFileError("the Tian lasso is not fitted: nothing to save")
    params = model.get_params()
    meta = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "library_versions": {"delicaite": DELICAITE_VERSION, "numpy": np.__version__},
        "feature_names": None if model.feature_names_in_ is None else [str(n) for n in model.feature_names_in_],
        "n_features": int(model.n_features_in_), "cutoff": float(params.pop("cutoff")), "hyperparameters": params,
        "main_intercept": model.main_intercept_, "penalty": model.penalty_,
        "propensity": None if model.propensity_coef_ is None else {
            "coef": [float(v) for v in model.propensity_coef_], "intercept": float(model.propensity_intercept_)},
        "training_summary": model.training_summary_,
    }
    if note is not None:
        meta["note"] = str(note)
    arrays = {name.rstrip("_"): np.asarray(getattr(model, name), dtype=float) for name in ARRAYS}
    model.metadata_ = write_artifact(directory, arrays, meta, TIAN_FORMAT, TIAN_VERSION)
    return Path(directory) / METADATA_FILE


def load_tian_lasso(path) -> TianLasso:
    arrays, meta, meta_path = read_artifact(path, TIAN_FORMAT, TIAN_VERSION)
    try:
        model = TianLasso(**meta["hyperparameters"], cutoff=meta["cutoff"])
        for name in ARRAYS:
            setattr(model, name, np.asarray(arrays[name.rstrip("_")], dtype=float))
        names = meta["feature_names"]
        model.feature_names_in_ = None if names is None else np.array(names, dtype=object)
        model.n_features_in_ = int(meta["n_features"])
        model.main_intercept_, model.penalty_ = float(meta["main_intercept"]), float(meta["penalty"])
        prop = meta["propensity"]
        model.propensity_coef_ = None if prop is None else np.asarray(prop["coef"], dtype=float)
        model.propensity_intercept_ = None if prop is None else float(prop["intercept"])
        model.training_summary_ = meta["training_summary"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"model file {meta_path} lacks or mistypes an entry ({exc}); train the model again") from None
    p = model.n_features_in_
    if model.coef_.shape != (p + 1,) or model.member_coefs_.ndim != 2 or model.member_coefs_.shape[1] != p + 1 \
            or model.main_coef_.shape != (p,) or not np.all(np.isfinite(model.coef_)):
        raise ModelFileError(f"model file {meta_path}: its arrays do not fit its {p} features; train the model again")
    model.metadata_ = meta
    return model
