"""The preprocessed crops of a cohort's cases, kept beside the case files for deep-feature work.

`delicaite cohort features --save-crops` writes ``cases/<patient_id>_crops.npz``: the 224 × 224 crops of
the three largest tumour slices, arrays ``AP`` and ``VP`` of shape (3, 224, 224), float32, as
preprocessing.preprocess_case gives them. Self-supervised pretraining, the block report and the CNN
per phase read them, so nobody loads and segments the CTs twice. Read with allow_pickle=False.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DelicaiteError
from ...preprocessing import PHASES
from ...storage import write_npz_atomically

CROPS_SUFFIX = "_crops.npz"
CROPS_FINGERPRINT = {"crops_saved": "AP,VP (3, 224, 224) float32"}


def crops_path(cases_dir, patient_id: str) -> Path:
    return Path(cases_dir) / f"{patient_id}{CROPS_SUFFIX}"


def write_crops_atomically(path, arrays: dict[str, np.ndarray]) -> None:
    """The AP and VP crops as float32 arrays of one .npz, written atomically."""
    write_npz_atomically(path, {phase: np.asarray(arrays[phase], dtype=np.float32) for phase in PHASES})


def read_case_crops(path) -> dict[str, np.ndarray]:
    """``{"AP": (n, H, W), "VP": (n, H, W)}`` of one case's crops file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {phase: np.array(data[phase]) for phase in PHASES}
    except (OSError, ValueError, KeyError) as exc:
        raise DelicaiteError(f"cannot read the crops file {Path(path).name} ({exc}); run "
                             "`delicaite cohort features --save-crops` again") from None


def patients_with_crops(features_dir) -> list[str]:
    """The patient ids that have a crops file under FEATURES_DIR/cases, sorted."""
    return sorted(p.name[: -len(CROPS_SUFFIX)] for p in (Path(features_dir) / "cases").glob(f"*{CROPS_SUFFIX}"))


def read_cohort_crops(features_dir, patient_ids=None) -> dict[str, dict[str, np.ndarray]]:
    """patient_id → crops for every crops file under FEATURES_DIR/cases (or the ``patient_ids`` given,
    those without a file left out); raises when there is none at all."""
    cases_dir = Path(features_dir) / "cases"
    if patient_ids is None:
        patient_ids = patients_with_crops(features_dir)
    found = {pid: crops_path(cases_dir, pid) for pid in patient_ids if crops_path(cases_dir, pid).is_file()}
    if not found:
        raise DelicaiteError(f"no crops under {cases_dir}: run `delicaite cohort features --save-crops` first")
    return {pid: read_case_crops(path) for pid, path in found.items()}
