"""Checksummed artifacts ("model files"): weights.npz (plain arrays) + model.json (everything else).

Every trained thing of the library is stored this way: the interaction model, the comparators, the
segmentation network, deep encoders and CNNs, the PCA of deep features, the model bundle. Reading uses ``json`` and ``np.load(allow_pickle=False)`` only, so nothing is unpickled, and
both sha256 sums are checked before anything is used: ``weights_sha256`` over the bytes of weights.npz,
``metadata_sha256`` over the canonical JSON of model.json without that key, so an edited cutoff or
scaler is refused as surely as a flipped weight.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from ..errors import DelicaiteError, ModelFileError
from .atomic import replacing

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


def write_artifact(directory, arrays: dict[str, np.ndarray], metadata: dict,
                   format_name: str, format_version: int) -> dict:
    """Write weights.npz and model.json into ``directory``; returns the metadata as written (with sums).

    Each file goes in under a temporary name; model.json, which holds the weights' sum, comes last, so
    a crash leaves a folder that fails its checksum rather than one that mixes two models silently."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    weights = buffer.getvalue()
    meta = {**metadata, "format": format_name, "format_version": format_version, "weights_file": WEIGHTS_FILE,
            "weights_sha256": _sha256(weights)}
    meta = json.loads(_canonical(meta))  # hash exactly what a reader will parse back
    meta["metadata_sha256"] = _sha256(_canonical(meta))
    with replacing(directory / WEIGHTS_FILE) as temporary:
        temporary.write_bytes(weights)
    with replacing(directory / METADATA_FILE) as temporary:
        temporary.write_text(json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    return meta


def _read_metadata(meta_path: Path, format_name: str, format_version: int) -> dict:
    if not meta_path.is_file():
        raise ModelFileError(f"model file {meta_path} is missing (a model directory holds {METADATA_FILE} and {WEIGHTS_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"model file {meta_path} is not valid JSON ({exc}); re-export the model") from None
    if not isinstance(meta, dict) or meta.get("format") != format_name:
        raise ModelFileError(f"model file {meta_path} is not a {format_name} file")
    if meta.get("format_version") != format_version:
        raise ModelFileError(
            f"model file {meta_path} has format version {meta.get('format_version')!r}; this library reads version {format_version}"
        )
    expected = meta.pop("metadata_sha256", None)
    if not isinstance(expected, str):
        raise ModelFileError(f"model file {meta_path} has no metadata_sha256; re-export the model")
    got = _sha256(_canonical(meta))
    if got != expected:
        raise _mismatch(meta_path, expected, got)
    meta["metadata_sha256"] = expected
    return meta


def _read_weights(weights_path: Path, expected: str) -> dict[str, np.ndarray]:
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


def read_artifact(path, format_name: str, format_version: int) -> tuple[dict[str, np.ndarray], dict, Path]:
    """(arrays, metadata, model.json path) of a model directory or its model.json, both sums verified."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model path {path} does not exist")
    meta_path = path / METADATA_FILE if path.is_dir() else path
    meta = _read_metadata(meta_path, format_name, format_version)
    arrays = _read_weights(meta_path.parent / WEIGHTS_FILE, meta["weights_sha256"])
    return arrays, meta, meta_path


def artifact_checksum(path) -> str:
    """The metadata_sha256 of an artifact folder (or its model.json), which covers its weights' sum too:
    one string that names exactly these files. Raises DelicaiteError when there is none."""
    path = Path(path)
    metadata = path / METADATA_FILE if path.is_dir() else path
    try:
        value = json.loads(metadata.read_text(encoding="utf-8"))["metadata_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise DelicaiteError(f"{metadata} is not a DELICAITE model file (no readable metadata_sha256)") from None
    if not isinstance(value, str):
        raise DelicaiteError(f"{metadata} has no metadata_sha256")
    return value
