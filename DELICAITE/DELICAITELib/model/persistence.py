"""Model files: weights.npz (plain float arrays) + model.json (everything else), both checksummed.

Loading reads JSON with ``json`` and arrays with ``np.load(allow_pickle=False)`` only: nothing is ever
unpickled. Both sha256 sums are checked before anything in the files is used: ``weights_sha256`` over
the bytes of weights.npz, ``metadata_sha256`` over the canonical JSON of model.json without that key,
so an edited cutoff or scaler is refused as surely as a flipped weight.
"""

import datetime
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import sklearn
import torch

from .. import __version__ as DELICAITE_VERSION
from ..errors import ModelFileError
from .interaction import InteractionModel
from .network import InteractionNet

FORMAT_NAME = "delicaite-interaction-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.npz"
METADATA_FILE = "model.json"


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mismatch(path: Path, expected: str, got: str) -> ModelFileError:
    return ModelFileError(
        f"model file {path} failed its sha256 check (expected {expected[:12]}…, got {got[:12]}…): "
        "it was modified or corrupted; re-export the model"
    )


def save_model(model: InteractionModel, directory, note: str | None = None) -> Path:
    """Write ``directory``/weights.npz and ``directory``/model.json; returns the model.json path.

    Afterwards ``model.metadata_`` holds model.json's content, as it does after load_model."""
    model._check_fitted()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    arrays = {
        f"member{k}.{name}": tensor.detach().cpu().numpy().astype(np.float32)
        for k, net in enumerate(model.networks_)
        for name, tensor in net.state_dict().items()
    }
    weights_path = directory / WEIGHTS_FILE
    np.savez(weights_path, **arrays)

    params = model.get_params()
    cutoff = float(params.pop("cutoff"))  # one source of truth: the top-level "cutoff"
    names = model.feature_names_in_
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
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
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": _sha256(weights_path.read_bytes()),
    }
    if note is not None:  # optional: readers fall back to their own wording when it is absent
        meta["note"] = str(note)
    meta = json.loads(_canonical(meta))  # hash exactly what a reader will parse back
    meta["metadata_sha256"] = _sha256(_canonical(meta))
    meta_path = directory / METADATA_FILE
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    model.metadata_ = meta
    return meta_path


def _read_metadata(meta_path: Path) -> dict:
    if not meta_path.is_file():
        raise ModelFileError(f"model file {meta_path} is missing (a model directory holds {METADATA_FILE} and {WEIGHTS_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"model file {meta_path} is not valid JSON ({exc}); re-export the model") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"model file {meta_path} is not a {FORMAT_NAME} file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"model file {meta_path} has format version {meta.get('format_version')!r}; this library reads version {FORMAT_VERSION}"
        )
    expected = meta.pop("metadata_sha256", None)
    if not isinstance(expected, str):
        raise ModelFileError(f"model file {meta_path} has no metadata_sha256; re-export the model")
    got = _sha256(_canonical(meta))
    if got != expected:
        raise _mismatch(meta_path, expected, got)
    return meta, expected


def _read_weights(weights_path: Path, expected: str) -> dict:
    if not weights_path.is_file():
        raise ModelFileError(f"model file {weights_path} is missing (a model directory holds {METADATA_FILE} and {WEIGHTS_FILE})")
    data = weights_path.read_bytes()
    got = _sha256(data)
    if got != expected:
        raise _mismatch(weights_path, expected, got)
    try:
        # parse the very bytes that were verified, not a second read of the file
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: np.array(npz[key]) for key in npz.files}
    except (ValueError, OSError) as exc:
        raise ModelFileError(f"model file {weights_path} cannot be read as plain arrays ({exc})") from None


def load_model(path) -> InteractionModel:
    """Load a model from its directory or its model.json; checksums are verified before any use."""
    path = Path(path)
    meta_path = path / METADATA_FILE if path.is_dir() else path
    if not path.exists():
        raise ModelFileError(f"model path {path} does not exist")
    meta, expected_meta_sha = _read_metadata(meta_path)
    arrays = _read_weights(meta_path.parent / WEIGHTS_FILE, meta["weights_sha256"])

    try:
        model = InteractionModel(**meta["hyperparameters"], cutoff=meta["cutoff"])
        n_features = int(meta["n_features"])
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
        networks = []
        for k in range(int(meta["n_members"])):
            net = InteractionNet(n_features, int(model.hidden_units), float(model.dropout))
            state = {}
            for name, ref in net.state_dict().items():
                arr = arrays[f"member{k}.{name}"]
                if arr.shape != tuple(ref.shape):
                    raise ModelFileError(f"model file weights member{k}.{name} has shape {arr.shape}, expected {tuple(ref.shape)}")
                state[name] = torch.as_tensor(arr, dtype=torch.float32)
            net.load_state_dict(state)
            networks.append(net.to(torch.device(model.device)).eval())
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"model file {meta_path} lacks or mistypes an entry ({exc}); re-export the model") from None
    model.networks_ = networks
    model.metadata_ = {**meta, "metadata_sha256": expected_meta_sha}
    return model
