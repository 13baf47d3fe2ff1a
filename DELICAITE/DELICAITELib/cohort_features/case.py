"""One cohort case: images → (auto-)segmentation → three largest tumour slices → radiomics → case file.

`extract_case_features` is the unit of work every scheduler runs (in-process, a process pool, a Dask
cluster): a top-level function with plain arguments that writes its own ``cases/<patient_id>.json``
and returns a small status dict, never raising for a bad case. The file is written to a temporary
name in the same folder and renamed (os.replace), so a crash leaves either the whole file or none.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import secrets
import sys
import time
import warnings
from pathlib import Path

from ..jsonable import json_default
from .crops import CROPS_FINGERPRINT, crops_path, write_crops_atomically

CASE_FORMAT = "delicaite-case-features"
CASE_FORMAT_VERSION = 1
TEMP_SUFFIX = ".tmp"
AUTOMATIC_MASK = "automatic (DELICAITE segmentation network, not reviewed)"
SEGMENTATION_SUFFIX = "_auto_segmentation.nii.gz"


def case_path(cases_dir, patient_id: str) -> Path:
    return Path(cases_dir) / f"{patient_id}.json"


def segmentation_path(cases_dir, patient_id: str) -> Path:
    """Where an automatic label map goes, for review (correct it and give it as the manifest's mask)."""
    return Path(cases_dir) / f"{patient_id}{SEGMENTATION_SUFFIX}"


def _temporary_beside(path: Path, suffix: str = TEMP_SUFFIX) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def settings_fingerprint(radiomics_params=None, deep_encoder=None, save_crops: bool = False, deep_cnn=None) -> dict:
    """Which settings a case file was made with: the radiomics settings' version number and a hash of
    the dict, the deep encoder's checksum (None without deep features) and, only when crops are asked
    for, that they were saved (so a run without --save-crops still accepts a case that has them)."""
    from ..features import load_radiomics_settings

    settings, version = load_radiomics_settings(radiomics_params)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    return {"radiomics_settings_version": version, "radiomics_settings_sha256": digest,
            "deep_encoder_sha256": None if deep_encoder is None else encoder_checksum(deep_encoder),
            "deep_cnn_sha256": None if deep_cnn is None else cnn_folder_checksum(deep_cnn),
            **(CROPS_FINGERPRINT if save_crops else {})}


def cnn_folder_checksum(path) -> str:
    """One sum over the metadata_sha256 of a CNN folder's AP and VP networks and its stacking."""
    from ..errors import DelicaiteError
    from ..features.deep.cnn import CNN_FOLDERS, STACKING_FOLDER

    path = Path(path)
    if not path.is_dir():
        raise DelicaiteError(f"CNN folder not found: {path} (write one with `delicaite deep train-cnn`)")
    parts = [encoder_checksum(path / folder) for folder in (*CNN_FOLDERS.values(), STACKING_FOLDER)]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def encoder_checksum(path) -> str:
    """A DELICAITE encoder folder's metadata_sha256 (which covers its weights' sum), or the sha256 of
    an official checkpoint file; a case file records it, so a new encoder means new deep features."""
    from ..errors import DelicaiteError
    from ..model.files import METADATA_FILE

    path = Path(path)
    metadata = path / METADATA_FILE if path.is_dir() else path
    if not metadata.is_file():
        raise DelicaiteError(f"deep encoder not found: {path} (give an encoder folder or an official DINOv2 .pth file)")
    if metadata.suffix == ".json":
        try:
            return str(json.loads(metadata.read_text(encoding="utf-8"))["metadata_sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            raise DelicaiteError(f"deep encoder {metadata} is not a DELICAITE encoder file (no metadata_sha256)") from None
    return hashlib.sha256(metadata.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=2)
def _loaded_cnns(path: str):
    """Each worker process loads (and checks) the CNN folder once."""
    from ..features.deep.cnn import load_phase_cnns

    return load_phase_cnns(path)


@functools.lru_cache(maxsize=2)
def _loaded_encoder(path: str, device: str):
    """Each worker process loads (and checks) the encoder once, not once per case."""
    from ..features.deep.encoder import load_encoder

    return load_encoder(path, device=device)


def read_case_file(path) -> dict | None:
    """A finished case file, or None when absent or unreadable (then the case is done again)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != CASE_FORMAT or not record.get("features"):
        return None
    return record


def is_finished(path, fingerprint: dict) -> bool:
    """True when the case file exists, is whole and was made with the same radiomics settings."""
    record = read_case_file(path)
    return record is not None and all(record.get(k) == v for k, v in fingerprint.items())


def write_json_atomically(path, record: dict) -> None:
    """Write JSON to a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    path = Path(path)
    temporary = _temporary_beside(path)
    try:
        # os.open with 0o666 keeps the user's umask (a NamedTemporaryFile would be private, 0600)
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1, default=json_default)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_label_atomically(path, label) -> None:
    """A label map under a temporary name beside ``path``, then renamed over it."""
    import SimpleITK as sitk

    path = Path(path)
    temporary = _temporary_beside(path, f"{TEMP_SUFFIX}.nii.gz")  # the suffix tells ITK the format
    try:
        sitk.WriteImage(label, str(temporary), True)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(cases_dir) -> int:
    """Delete temporary files a killed run left behind; returns how many."""
    stale = list(Path(cases_dir).glob(f".*{TEMP_SUFFIX}*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def limit_threads(threads: int) -> None:
    """Keep one worker's libraries to ``threads`` threads, so parallel workers do not oversubscribe."""
    import SimpleITK as sitk

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)  # read by torch/BLAS when first imported in this process
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def compute_case(ap, vp, mask, *, device: str = "cpu", threads: int | None = None,
                 radiomics_params=None, deep_encoder: str | None = None, save_crops: bool = False,
                 deep_cnn: str | None = None) -> dict:
    """Features, slices, mask source and (when automatic) the label map of one case; raises on a bad case."""
    from ..features import extract_radiomics
    from ..io import load_case
    from ..slices import largest_tumour_slices

    case = load_case(ap, vp, mask or None)
    mask_source = "given"
    if case.label is None:
        from ..segmentation.backends import segment_ct

        if threads:
            import torch

            torch.set_num_threads(threads)
        case.label = segment_ct(case.ap, device=device)
        mask_source = AUTOMATIC_MASK
    slices = largest_tumour_slices(case.label)
    features = extract_radiomics({"AP": case.ap, "VP": case.vp}, case.label, [s.index for s in slices],
                                 params=radiomics_params)
    crops = None
    if deep_encoder or save_crops or deep_cnn:
        from ..preprocessing import preprocess_case

        crops = preprocess_case(case, slices)
    if deep_encoder:
        encoder_device = "cpu" if device == "auto" else device
        features.update(_loaded_encoder(str(deep_encoder), encoder_device).case_features(crops))
    if deep_cnn:
        from ..features.deep.cnn import case_cnn_features

        features.update(case_cnn_features(crops, *_loaded_cnns(str(deep_cnn))))
    return {"mask_source": mask_source, "slices": [{"index": s.index, "area_mm2": s.area_mm2} for s in slices],
            "alignment": case.alignment, "features": features,
            "label": case.label if mask_source == AUTOMATIC_MASK else None, "crops": crops if save_crops else None}


def describe_error(err: BaseException, base_dir=None) -> str:
    """One line for failures.csv and the log: the message, with the cohort folder's path cut off
    (folders above the images often carry names that identify patients)."""
    from ..errors import DelicaiteError

    message = str(err) if isinstance(err, DelicaiteError) else f"{type(err).__name__}: {err}"
    if base_dir is not None:
        for root in {str(Path(base_dir)), str(Path(base_dir).resolve())}:
            message = message.replace(root + os.sep, "")
    return " ".join(message.split())


def extract_case_features(patient_id: str, ap: str, vp: str, mask: str | None, cases_dir: str, *,
                          device: str = "cpu", threads: int | None = None, radiomics_params=None,
                          deep_encoder: str | None = None, save_crops: bool = False, deep_cnn: str | None = None,
                          base_dir: str | None = None) -> dict:
    """Extract one case into ``cases_dir/<patient_id>.json``; return {patient_id, status, error, seconds}.

    A case without a mask is auto-segmented (on ``device``) and its label map is kept beside the case
    file as ``<patient_id>_auto_segmentation.nii.gz`` for review; with ``save_crops`` the preprocessed
    crops go beside it as ``<patient_id>_crops.npz`` (crops.py).

    status is "done", "skipped" (a finished file with the same settings exists) or "failed" (error
    says why; no file is written). ``threads`` limits this process's threads (parallel workers).
    """
    target = case_path(cases_dir, patient_id)
    fingerprint = settings_fingerprint(radiomics_params, deep_encoder, save_crops, deep_cnn)
    if is_finished(target, fingerprint):
        return {"patient_id": patient_id, "status": "skipped", "error": "", "seconds": 0.0}
    started = time.perf_counter()
    try:
        if threads:
            limit_threads(threads)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = compute_case(ap, vp, mask, device=device, threads=threads, radiomics_params=radiomics_params,
                                  deep_encoder=deep_encoder, save_crops=save_crops, deep_cnn=deep_cnn)
        record = _case_record(patient_id, result, fingerprint, time.perf_counter() - started,
                              [describe_error(w.message, base_dir) for w in caught])
        if result["label"] is not None:  # before the case file, which marks the case finished
            write_label_atomically(segmentation_path(cases_dir, patient_id), result["label"])
            record["segmentation_file"] = segmentation_path(cases_dir, patient_id).name
        if result["crops"] is not None:
            write_crops_atomically(crops_path(cases_dir, patient_id), result["crops"])
            record["crops_file"] = crops_path(cases_dir, patient_id).name
        write_json_atomically(target, record)
    except Exception as err:  # noqa: BLE001 — one bad case must not stop the cohort
        return {"patient_id": patient_id, "status": "failed", "error": describe_error(err, base_dir),
                "seconds": time.perf_counter() - started}
    return {"patient_id": patient_id, "status": "done", "error": "", "seconds": time.perf_counter() - started}


def _case_record(patient_id: str, result: dict, fingerprint: dict, seconds: float, caught: list[str]) -> dict:
    import radiomics

    from .. import __version__

    return {
        "format": CASE_FORMAT, "format_version": CASE_FORMAT_VERSION, "patient_id": patient_id,
        "delicaite_version": __version__, "pyradiomics_version": str(radiomics.__version__), **fingerprint,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "seconds": round(seconds, 2),
        "mask_source": result["mask_source"], "slices": result["slices"], "alignment": result["alignment"],
        "warnings": sorted(set(caught)), "features": result["features"],
    }
