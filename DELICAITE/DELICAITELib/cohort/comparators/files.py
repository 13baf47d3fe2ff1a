"""A fitted comparator on disk: model arrays in weights.npz; name, kind, input columns, training
medians, scaler, hyper-parameters, threshold and notes in model.json — both sha256-checked by
``storage.artifacts``; nothing is pickled, so loading cannot run code hidden in the file.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import sklearn

from ... import __version__ as DELICAITE_VERSION
from ...errors import ModelFileError
from ...storage import read_artifact, write_artifact
from .models import KINDS, PREDICT, Comparator

FORMAT_NAME = "delicaite-comparator"
FORMAT_VERSION = 1
INPUTS_FORMAT = "delicaite-model-inputs"  # the columns and training medians that feed the interaction model


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float)]


def save_comparator(comparator: Comparator, directory) -> Path:
    """Write ``directory``/weights.npz and model.json; returns the directory."""
    meta = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "library_versions": {"delicaite": DELICAITE_VERSION, "numpy": np.__version__,
                             "scikit-learn": sklearn.__version__},
        "name": comparator.name,
        "kind": comparator.kind,
        "feature_names": list(comparator.columns),
        "imputation_medians": _floats(comparator.medians),
        "scaler": {"mean": _floats(comparator.mean), "scale": _floats(comparator.scale)},
        "hyperparameters": comparator.params,
        "threshold": None if comparator.threshold is None else float(comparator.threshold),
        "info": comparator.info,
    }
    write_artifact(directory, comparator.arrays, meta, FORMAT_NAME, FORMAT_VERSION)
    return Path(directory)


def load_comparator(directory) -> Comparator:
    """Read a comparator written by save_comparator; checksums are verified before anything is used."""
    arrays, meta, meta_path = read_artifact(directory, FORMAT_NAME, FORMAT_VERSION)
    try:
        if meta["kind"] not in KINDS:
            raise ModelFileError(f"model file {meta_path} has unknown comparator kind {meta['kind']!r}")
        columns = [str(c) for c in meta["feature_names"]]
        comparator = Comparator(
            name=str(meta["name"]), kind=meta["kind"], columns=columns,
            medians=np.asarray(meta["imputation_medians"], dtype=float),
            mean=np.asarray(meta["scaler"]["mean"], dtype=float), scale=np.asarray(meta["scaler"]["scale"], dtype=float),
            params=dict(meta["hyperparameters"]), arrays=arrays,
            threshold=None if meta["threshold"] is None else float(meta["threshold"]), info=meta["info"])
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"model file {meta_path} lacks or mistypes an entry ({exc}); re-train the model") from None
    if not (len(comparator.medians) == len(comparator.mean) == len(comparator.scale) == len(columns)):
        raise ModelFileError(f"model file {meta_path}: scaler and feature names differ in length")
    if comparator.kind not in PREDICT:
        raise ModelFileError(f"model file {meta_path}: no predictor for kind {comparator.kind!r}")
    return comparator


def save_inputs(directory, columns: list[str], medians: np.ndarray, threshold: float, note: str) -> Path:
    """The interaction model's input columns, training medians (imputation) and Youden threshold."""
    meta = {"feature_names": list(columns), "threshold": float(threshold), "note": note}
    write_artifact(directory, {"imputation_medians": np.asarray(medians, dtype=float)}, meta,
                      INPUTS_FORMAT, FORMAT_VERSION)
    return Path(directory)


def load_inputs(directory) -> tuple[list[str], np.ndarray, float]:
    """(columns, medians, threshold) written by save_inputs, checksums verified."""
    arrays, meta, meta_path = read_artifact(directory, INPUTS_FORMAT, FORMAT_VERSION)
    try:
        columns, medians = [str(c) for c in meta["feature_names"]], arrays["imputation_medians"]
        threshold = float(meta["threshold"])
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"model file {meta_path} lacks or mistypes an entry ({exc}); re-train the model") from None
    if len(medians) != len(columns):
        raise ModelFileError(f"model file {meta_path}: {len(medians)} medians for {len(columns)} columns")
    return columns, medians, threshold
