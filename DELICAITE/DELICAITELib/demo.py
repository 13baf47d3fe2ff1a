"""The demo: a whole case on material the project makes itself (no network, no patient data).

Inputs are written as real files so the demo goes through the same readers as a user's case:
a synthetic two-phase CT with its label map (phantom.py), a plausible clinical record, and the
bundled demo model, trained on a simulated cohort (simulate.py) and shipped with its checksum.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import SimpleITK as sitk

from .phantom import make_phantom

DEMO_MODEL_SEED = 2026
DEMO_MODEL_N = 900
DEMO_NOTE = "DEMO model trained on a simulated cohort: not for clinical use"

# A made-up patient in the middle of the study's Table 1 (no real person).
DEMO_CLINICAL = {
    "age": 54, "sex": "male", "ecog": 0, "comorbidity": False, "etiology": "HBV", "ascites": False,
    "alb": 38.5, "alt": 52, "ast": 76, "tbil": 17.0, "pt": 12.5, "inr": 1.08, "plt": 205, "crp": 18,
    "cre": 70, "child_pugh": 5, "max_diameter": 11.2, "tumour_number": ">3", "pvtt": True,
    "metastasis": False, "bclc": "C", "afp": 1250.0,
}


def demo_model_dir() -> Path:
    """The bundled demo model folder inside the installed package."""
    return Path(str(resources.files("DELICAITELib") / "resources" / "demo_model"))


def build_demo_model(out_dir: str | Path, progress=None) -> Path:
    """Train the demo model exactly as it is shipped (rerun to rebuild the bundled one): the same
    training entry point as `delicaite train`, on a simulated cohort written to a temporary folder."""
    import tempfile

    from .cohort import write_cohort
    from .cohort.trained import SPLITS_FILE, SUMMARY_FILE
    from .cohort.training import train_cohort
    from .simulate import simulate_cohort

    with tempfile.TemporaryDirectory(prefix="delicaite-demo-cohort-") as folder:
        write_cohort(simulate_cohort(n=DEMO_MODEL_N, seed=DEMO_MODEL_SEED, assignment="physician"), folder)
        train_cohort(folder, out_dir, by_centre=False, comparators=False, seed=DEMO_MODEL_SEED, note=DEMO_NOTE,
                     progress=progress)
    for record in (SPLITS_FILE, SUMMARY_FILE):  # the package ships the bundle alone (no simulated patient ids)
        (Path(out_dir) / record).unlink()
    return Path(out_dir)


def write_demo_inputs(folder: str | Path) -> dict[str, Path]:
    """Write the phantom's AP, VP and label map as NIfTI and the clinical record as JSON."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    phantom = make_phantom()
    paths = {"ap": folder / "phantom_ap.nii.gz", "vp": folder / "phantom_vp.nii.gz",
             "mask": folder / "phantom_label.nii.gz", "clinical": folder / "clinical.json"}
    sitk.WriteImage(phantom.ap, str(paths["ap"]))
    sitk.WriteImage(phantom.vp, str(paths["vp"]))
    sitk.WriteImage(phantom.label, str(paths["mask"]))
    paths["clinical"].write_text(json.dumps(DEMO_CLINICAL, indent=2), encoding="utf-8")
    return paths


def run_demo(out_dir: str | Path, progress=None):
    """Run the whole case on the phantom with the bundled demo model; returns the CaseResult."""
    from .case import run_case

    out = Path(out_dir)
    paths = write_demo_inputs(out / "inputs")
    return run_case(paths["ap"], paths["vp"], paths["mask"], DEMO_CLINICAL, demo_model_dir(), out,
                    progress=progress)
