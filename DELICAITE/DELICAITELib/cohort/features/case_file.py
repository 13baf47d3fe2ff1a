"""One cohort case: the case engine's first two stages (prepare → features) → ``cases/<patient_id>.json``.

`extract_case_features` is the unit of work every scheduler runs (in-process, a process pool, a Dask
cluster): a top-level function with plain, picklable arguments that writes its own case file and
returns a small status dict, never raising for a bad case. The file is written atomically, so a crash
leaves either the whole file or none.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

from ...features.spec import FeatureSpec
from ...storage import write_image_atomically, write_json_atomically
from .crops import CROPS_FINGERPRINT, crops_path, write_crops_atomically

CASE_FORMAT = "delicaite-case-features"
CASE_FORMAT_VERSION = 1
SEGMENTATION_SUFFIX = "_auto_segmentation.nii.gz"


def case_path(cases_dir, patient_id: str) -> Path:
    return Path(cases_dir) / f"{patient_id}.json"


def segmentation_path(cases_dir, patient_id: str) -> Path:
    """Where an automatic label map goes, for review (correct it and give it as the manifest's mask)."""
    return Path(cases_dir) / f"{patient_id}{SEGMENTATION_SUFFIX}"


def run_fingerprint(spec: FeatureSpec, save_crops: bool = False) -> dict:
    """What a case file records of the run that made it: the spec's fingerprint and, only when crops are
    asked for, that they were saved (so a run without --save-crops still accepts a case that has them)."""
    return {**spec.fingerprint(), **(CROPS_FINGERPRINT if save_crops else {})}


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
    """True when the case file exists, is whole and was made with the same settings."""
    record = read_case_file(path)
    return record is not None and all(record.get(k) == v for k, v in fingerprint.items())


def limit_threads(threads: int) -> None:
    """Keep one worker's libraries to ``threads`` threads, so parallel workers do not oversubscribe."""
    import SimpleITK as sitk

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)  # read by torch/BLAS when first imported in this process
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def describe_error(err: BaseException, base_dir=None) -> str:
    """One line for failures.csv and the log: the message, with the cohort folder's path cut off
    (folders above the images often carry names that identify patients)."""
    from ...errors import DelicaiteError

    return without_paths(str(err) if isinstance(err, DelicaiteError) else f"{type(err).__name__}: {err}", base_dir)


def without_paths(message: str, base_dir=None) -> str:
    """``message`` on one line with the cohort folder's path cut off, and any other absolute path cut to its
    last part."""
    from ...storage import strip_absolute_paths

    if base_dir is not None:
        for root in {str(Path(base_dir)), str(Path(base_dir).resolve())}:
            message = message.replace(root + os.sep, "")
    return " ".join(strip_absolute_paths(message).split())


def extract_case_features(patient_id: str, ap: str, vp: str, mask: str | None, cases_dir: str, *,
                          spec: FeatureSpec, fingerprint: dict, device: str = "cpu", threads: int | None = None,
                          save_crops: bool = False, base_dir: str | None = None) -> dict:
    """Extract one case into ``cases_dir/<patient_id>.json``; return {patient_id, status, error, seconds}.

    A case without a mask is auto-segmented (on ``device``) and its label map is kept beside the case
    file as ``<patient_id>_auto_segmentation.nii.gz`` for review; with ``save_crops`` the preprocessed
    crops go beside it as ``<patient_id>_crops.npz`` (crops.py).

    status is "done", "skipped" (a finished file with the same ``fingerprint`` exists) or "failed"
    (error says why; no file is written). ``threads`` limits this process's threads (parallel workers).
    """
    from ...case import CaseEngine

    target = case_path(cases_dir, patient_id)
    if is_finished(target, fingerprint):
        return {"patient_id": patient_id, "status": "skipped", "error": "", "seconds": 0.0}
    started = time.perf_counter()
    try:
        if threads:
            limit_threads(threads)
        engine = CaseEngine(feature_spec=spec, device=device)
        prepared = engine.prepare(ap, vp, mask or None)
        features = engine.features(prepared, keep_crops=save_crops)
        record = _case_record(patient_id, prepared, features.values, fingerprint, time.perf_counter() - started,
                              [without_paths(w, base_dir) for w in prepared.warnings],
                              spec.engine_here() if spec.radiomics is not None else None)
        if prepared.automatic_mask:  # before the case file, which marks the case finished
            write_image_atomically(segmentation_path(cases_dir, patient_id), prepared.case.label)
            record["segmentation_file"] = segmentation_path(cases_dir, patient_id).name
        if features.crops is not None:
            write_crops_atomically(crops_path(cases_dir, patient_id), features.crops)
            record["crops_file"] = crops_path(cases_dir, patient_id).name
        write_json_atomically(target, record)
    except Exception as err:  # noqa: BLE001 — one bad case must not stop the cohort
        return {"patient_id": patient_id, "status": "failed", "error": describe_error(err, base_dir),
                "seconds": time.perf_counter() - started}
    return {"patient_id": patient_id, "status": "done", "error": "", "seconds": time.perf_counter() - started}


def _case_record(patient_id: str, prepared, features: dict, fingerprint: dict, seconds: float,
                 warnings: list[str], radiomics_engine: str | None) -> dict:
    from ... import __version__

    return {
        "format": CASE_FORMAT, "format_version": CASE_FORMAT_VERSION, "patient_id": patient_id,
        "delicaite_version": __version__, "radiomics_engine": radiomics_engine, **fingerprint,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "seconds": round(seconds, 2),
        "mask_source": prepared.mask_source, "slices": [{"index": s.index, "area_mm2": s.area_mm2} for s in prepared.slices],
        "alignment": prepared.case.alignment, "warnings": sorted(set(warnings)), "features": features,
    }
