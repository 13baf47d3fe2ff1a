"""Saving and loading the interaction model through the checksummed model files of ``files.py``.

The ensemble's tensors go to weights.npz as plain float arrays; scaler, cutoff, hyper-parameters,
propensity coefficients and the training summary go to model.json. Nothing is unpickled on load.
"""

import datetime
from pathlib import Path

import numpy as np
import sklearn
import torch

from .. import __version__ as DELICAITE_VERSION
from ..errors import ModelFileError
from ..storage import METADATA_FILE, read_artifact, write_artifact
from .calibration import EffectCalibration
from .interaction import InteractionModel
from .network import InteractionNet

FORMAT_NAME = "delicaite-interaction-model"
FORMAT_VERSION = 1


def save_model(model, directory, note: str | None = None) -> Path:
    """Write ``directory``/weights.npz and ``directory``/model.json; returns the model.json path.
    ``model`` is an InteractionModel or a TianLasso (tian_files.py).

    Afterwards ``model.metadata_`` holds model.json's content, as it does after load_model."""
    from .tian import TianLasso

    if isinstance(model, TianLasso):
        from .tian_files import save_tian_lasso

        return save_tian_lasso(model, directory, note)
    model._check_fitted()
    arrays = {
        f"member{k}.{name}": tensor.detach().cpu().numpy().astype(np.float32)
        for k, net in enumerate(model.networks_)
        for name, tensor in net.state_dict().items()
    }
    params = model.get_params()
    cutoff = float(params.pop("cutoff"))  # one source of truth: the top-level "cutoff"
    names = model.feature_names_in_
    meta = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "library_versions": {
            "delicaite": DELICAITE_VERSION,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "feature_names": None if names is None else [str(n) for n in names],
        "n_features": int(model.n_features_in_),
        "scaler": {"mean": [float(v) for v in model.scaler_mean_], "std": [float(v) for v in model.scaler_scale_]},
        "cutoff": cutoff,
        "hyperparameters": params,
        "n_members": len(model.networks_),
        "propensity": None
        if model.propensity_coef_ is None
        else {"coef": [float(v) for v in model.propensity_coef_], "intercept": float(model.propensity_intercept_)},
        "training_summary": model.training_summary_,
        "training_h": [float(v) for v in model.training_h_],
        "calibration": model._calibration().as_dict(),
    }
    if note is not None:  # optional: readers fall back to their own wording when it is absent
        meta["note"] = str(note)
    model.metadata_ = write_artifact(directory, arrays, meta, FORMAT_NAME, FORMAT_VERSION)
    return Path(directory) / METADATA_FILE


def load_model(path):
    """Load a model (an InteractionModel or a TianLasso, by the file's format) from its directory or its
    model.json; checksums are verified before any use."""
    from .tian_files import TIAN_FORMAT, load_tian_lasso

    if _format_of(path) == TIAN_FORMAT:
        return load_tian_lasso(path)
    arrays, meta, meta_path = read_artifact(path, FORMAT_NAME, FORMAT_VERSION)

    try:
        # Files written before the input group lasso, the penalty search, the adaptive refit, the
        # input screen, the out-of-bag calibration and the towers' linear paths were trained without them.
        hyperparameters = {"input_penalty": 0.0, "penalty_search": False, "adaptive_inputs": 0.0, "penalty_pooling": "best",
                           "input_screen": False, "calibration": "none",
                           "linear_path": False, **meta["hyperparameters"]}
        model = InteractionModel(**hyperparameters, cutoff=meta["cutoff"])
        n_features = _count(meta, "n_features", meta_path)
        _count(meta, "n_members", meta_path)
        names = meta["feature_names"]
        model.feature_names_in_ = None if names is None else np.array(names, dtype=object)
        model.n_features_in_ = n_features
        model.scaler_mean_ = np.asarray(meta["scaler"]["mean"], dtype=float)
        model.scaler_scale_ = np.asarray(meta["scaler"]["std"], dtype=float)
        prop = meta["propensity"]
        model.propensity_coef_ = None if prop is None else np.asarray(prop["coef"], dtype=float)
        model.propensity_intercept_ = None if prop is None else float(prop["intercept"])
        model.training_summary_ = meta["training_summary"]
        model.training_h_ = np.asarray(meta["training_h"], dtype=float)
        model.calibration_ = EffectCalibration.from_dict(meta.get("calibration"))
        networks = []
        for k in range(int(meta["n_members"])):
            net = InteractionNet(n_features, int(model.hidden_units), float(model.dropout), bool(model.linear_path))
            state = {}
            for name, ref in net.state_dict().items():
                arr = arrays[f"member{k}.{name}"]
                if arr.shape != tuple(ref.shape):
                    raise ModelFileError(f"model file weights member{k}.{name} has shape {arr.shape}, expected {tuple(ref.shape)}")
                state[name] = torch.as_tensor(arr, dtype=torch.float32)
            net.load_state_dict(state)
            networks.append(net.to(torch.device(model.device)).eval())
        _check_values(model, arrays, meta_path)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"model file {meta_path} lacks or mistypes an entry ({exc}); re-export the model") from None
    model.networks_ = networks
    model.metadata_ = meta
    return model


MAX_FEATURES = 100_000
MAX_MEMBERS = 1_000


def _count(meta: dict, key: str, meta_path) -> int:
    """A positive whole number of the file (features, members) within sane bounds, or ModelFileError."""
    value = meta[key]
    limit = MAX_FEATURES if key == "n_features" else MAX_MEMBERS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ModelFileError(f"model file {meta_path}: {key} is {str(value)[:40]!r}, not a whole number from 1 to "
                             f"{limit}; re-export the model")
    return value


def _check_values(model, arrays: dict, meta_path) -> None:
    """Every number finite, scaler of the right length with positive scales, cutoff finite: a model that
    would turn a patient into NaN risks is refused when it is loaded, not after."""
    n = model.n_features_in_
    for name, values in (("scaler mean", model.scaler_mean_), ("scaler std", model.scaler_scale_)):
        if values.shape != (n,):
            raise ModelFileError(f"model file {meta_path}: {name} has {values.size} values for {n} features; re-export the model")
    bad = [name for name, values in (("scaler mean", model.scaler_mean_), ("scaler std", model.scaler_scale_),
                                     ("training h", model.training_h_), *arrays.items()) if not np.all(np.isfinite(values))]
    if bad or not np.isfinite(float(model.cutoff)):
        raise ModelFileError(f"model file {meta_path} holds non-finite values ({', '.join(bad[:3]) or 'cutoff'}); "
                             "re-export the model")
    if np.any(model.scaler_scale_ <= 0):
        k = int(np.flatnonzero(model.scaler_scale_ <= 0)[0])
        feature = model.feature_names_in_[k] if model.feature_names_in_ is not None else f"feature {k}"
        raise ModelFileError(f"model file {meta_path}: the scaler's standard deviation of {feature} is "
                             f"{model.scaler_scale_[k]:g} (it must be positive); re-export the model")


def _format_of(path) -> str | None:
    """The format a model.json claims (read only to choose the reader, which verifies it)."""
    import json

    path = Path(path)
    meta_path = path / METADATA_FILE if path.is_dir() else path
    try:
        return json.loads(meta_path.read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        return None
