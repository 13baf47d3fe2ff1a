"""A cohort: many patients' covariates, therapy and outcomes, as objects and as a folder of CSV files.

A cohort folder holds manifest.csv (patient_id, centre, ap, vp, mask, therapy, pd, os_months, os_event),
covariates.csv (patient_id + the clinical schema's fields, in schema units) and, for a simulated cohort,
truth.csv (the known g, h and propensity). `delicaite simulate` writes one; a site assembles its own the
same way; `cohort.training.train_cohort` trains on it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from ..clinical import SCHEMA, validate_table
from ..errors import ClinicalError, DelicaiteError
from .manifest import ManifestError, line_of, problems_error, read_manifest


@dataclass
class Cohort:
    """A cohort: covariates, therapy and outcomes per patient, plus the truth where known.

    Arrays are aligned with `covariates` rows. `true_*` and `propensity` are None for a cohort read
    back without truth.csv. `images` (patient_id, ap, vp, mask paths) is None for covariates-only.
    """

    patient_id: np.ndarray
    centre: np.ndarray
    covariates: pd.DataFrame
    therapy: np.ndarray
    pd: np.ndarray
    os_months: np.ndarray
    os_event: np.ndarray
    true_g: np.ndarray | None = None
    true_h: np.ndarray | None = None
    propensity: np.ndarray | None = None
    true_p_tace: np.ndarray | None = None
    true_p_haic: np.ndarray | None = None
    images: pd.DataFrame | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.patient_id)

    @property
    def T(self) -> np.ndarray:
        """Therapy coded −1 (TACE) / +1 (HAIC)."""
        return np.where(self.therapy == "HAIC", 1, -1)

    @property
    def oracle_best(self) -> np.ndarray | None:
        """The therapy the truth recommends (cutoff 0; h = 0 counts as TACE), or None without truth."""
        return None if self.true_h is None else np.where(self.true_h < 0, "HAIC", "TACE")

    def to_frame(self) -> pd.DataFrame:
        """One row per patient: ids, centre, therapy, outcomes, covariates and (when known) the truth."""
        df = pd.DataFrame({"patient_id": self.patient_id, "centre": self.centre, "therapy": self.therapy,
                           "pd": self.pd, "os_months": self.os_months, "os_event": self.os_event})
        df = pd.concat([df, self.covariates.reset_index(drop=True)], axis=1)
        for name in ("true_g", "true_h", "propensity", "true_p_tace", "true_p_haic"):
            if getattr(self, name) is not None:
                df[name] = getattr(self, name)
        return df


_SIMULATED_README = """SIMULATED DATA - not patients.
Written by DELICAITELib.simulate (simulate_cohort: {info}).
Covariates follow the marginals of the DELICAITE study's Table 1; therapy, PD and OS come from a
known model (see the docstring of DELICAITELib.simulate):
- logit P(PD | x, T) = g(x) + T*h(x)/2 with T = -1 TACE, +1 HAIC; h > 0 means HAIC raises the PD risk.
- The intercepts of g and h (info: intercepts) were solved so that, under the physician choice, the
  disease-control rates (1 - PD) are info: disease_control = (TACE, HAIC); the study's primary set
  has 0.273 and 0.805.
- OS is Weibull with a covariate hazard and a hazard ratio of exp(0.7) for progressive disease: the
  therapy acts on survival through PD.
truth.csv holds that model's g(x), h(x), the propensity P(HAIC | x) and both PD probabilities.
Files: manifest.csv (patient_id, centre, ap, vp, mask, therapy, pd, os_months, os_event),
covariates.csv (patient_id + schema fields in schema units), truth.csv.
"""

_MANIFEST = ["patient_id", "centre", "ap", "vp", "mask", "therapy", "pd", "os_months", "os_event"]
_TRUTH = ["true_g", "true_h", "propensity", "true_p_tace", "true_p_haic"]


def write_cohort(cohort: Cohort, out_dir) -> Path:
    """Write manifest.csv, covariates.csv, truth.csv (when known) and README.txt into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = pd.DataFrame({"patient_id": cohort.patient_id, "centre": cohort.centre})
    for col in ("ap", "vp", "mask"):
        manifest[col] = "" if cohort.images is None else cohort.images[col].fillna("").to_numpy()
    manifest["therapy"], manifest["pd"] = cohort.therapy, cohort.pd
    manifest["os_months"], manifest["os_event"] = cohort.os_months, cohort.os_event
    manifest[_MANIFEST].to_csv(out / "manifest.csv", index=False)
    covariates = cohort.covariates.reset_index(drop=True).copy()
    covariates.insert(0, "patient_id", cohort.patient_id)
    covariates.to_csv(out / "covariates.csv", index=False)
    if cohort.true_h is not None:  # only a simulated cohort knows its truth
        truth = pd.DataFrame({"patient_id": cohort.patient_id, **{k: getattr(cohort, k) for k in _TRUTH}})
        truth.to_csv(out / "truth.csv", index=False, float_format="%.10g")
        (out / "README.txt").write_text(_SIMULATED_README.format(info=cohort.info or "unknown parameters"),
                                        encoding="utf-8")
    return out


def _read_csv(path: Path) -> pd.DataFrame:
    # keep "none" (etiology) and "0" (BCLC) as text; only empty cells are missing
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"patient_id": str})


def _covariate_problems(err: ClinicalError) -> list[str]:
    """validate_table's problems ("row 3 (patient X), column alb: ...") named by covariates.csv line."""
    def by_line(problem: str) -> str:
        match = re.match(r"row (\d+)", problem)
        if match:
            return f"covariates.csv line {line_of(int(match.group(1)) - 1)}" + problem[match.end():]
        return "covariates.csv line 1 (header), " + problem
    return [by_line(p) for p in getattr(err, "problems", None) or [str(err)]]


def read_cohort(cohort_dir, *, check_image_paths: bool = True) -> Cohort:
    """Read a directory written by `write_cohort` (or laid out the same way); truth.csv is optional.

    manifest.csv is checked by `manifest.validate_manifest` (image paths relative to the cohort folder
    must exist unless ``check_image_paths`` is False) and covariates.csv by `clinical.validate_table`
    (values, units and ranges; missing values allowed); all problems come in one DelicaiteError naming
    file, line and column. Manifest notes (unknown pd or survival) are warned and kept in
    ``info["manifest_notes"]``. ``images`` holds absolute paths (None where empty).
    """
    d = Path(cohort_dir)
    for name in ("manifest.csv", "covariates.csv"):
        if not (d / name).is_file():
            raise DelicaiteError(f"cohort file missing: {d / name} (a cohort folder holds manifest.csv and covariates.csv)")
    covariates = _read_csv(d / "covariates.csv")
    if "patient_id" not in covariates:
        raise DelicaiteError(f"{d / 'covariates.csv'} has no patient_id column: its first column is patient_id, "
                             "then the schema fields")
    for name, f in SCHEMA.items():
        if f.kind == "categorical" and name in covariates:
            covariates[name] = covariates[name].map(lambda v: v if pd.isna(v) else str(v)).astype(object)
    problems, manifest = [], None
    try:
        manifest = read_manifest(d, covariate_ids=covariates["patient_id"], check_image_paths=check_image_paths)
    except ManifestError as err:
        problems += err.problems
    try:
        validate_table(covariates, require=False)
    except ClinicalError as err:
        problems += _covariate_problems(err)
    if problems:
        raise problems_error(problems, f"cohort {d}")
    for note in manifest.attrs["notes"]:
        warnings.warn(f"manifest.csv: {note}", stacklevel=2)
    if list(covariates["patient_id"]) != list(manifest["patient_id"]):
        covariates = covariates.set_index("patient_id").loc[manifest["patient_id"]].reset_index()
    ids = manifest["patient_id"].to_numpy(dtype=object)
    images = None
    if manifest[["ap", "vp", "mask"]].notna().any().any():
        images = manifest[["patient_id", "ap", "vp", "mask"]].copy()
    truth = {}
    if (d / "truth.csv").is_file():
        t = _read_csv(d / "truth.csv").set_index("patient_id").loc[ids]
        truth = {k: t[k].to_numpy(float) for k in _TRUTH if k in t}
        if "true_p_tace" not in truth and {"true_g", "true_h"} <= truth.keys():
            truth["true_p_tace"] = expit(truth["true_g"] - truth["true_h"] / 2)
            truth["true_p_haic"] = expit(truth["true_g"] + truth["true_h"] / 2)
    return Cohort(
        patient_id=ids, centre=manifest["centre"].to_numpy(dtype=object),
        covariates=covariates.drop(columns="patient_id").reset_index(drop=True),
        therapy=manifest["therapy"].to_numpy(dtype=object),
        pd=manifest["pd"].to_numpy(), os_months=manifest["os_months"].to_numpy(float),
        os_event=manifest["os_event"].to_numpy(), images=images,
        info={"read_from": str(d), "manifest_notes": list(manifest.attrs["notes"])}, **truth)
