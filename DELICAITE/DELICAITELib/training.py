"""Train the interaction model from a cohort folder (manifest.csv + covariates.csv).

A cohort folder is what `delicaite simulate` writes and what a site assembles for its own patients:
manifest.csv holds patient_id, therapy ("TACE"/"HAIC") and pd (0/1); covariates.csv holds patient_id
and the clinical fields of the schema. This version trains on the clinical covariates.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .clinical import encode, validate_table
from .errors import DelicaiteError


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DelicaiteError(f"cohort file missing: {path} (a cohort folder holds manifest.csv and covariates.csv)")
    return pd.read_csv(path)


def read_training_table(cohort_dir: str | Path) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """(encoded covariates, therapy, pd) of every patient of the cohort, in manifest order."""
    folder = Path(cohort_dir)
    manifest = _read_csv(folder / "manifest.csv")
    covariates = _read_csv(folder / "covariates.csv")
    for column in ("patient_id", "therapy", "pd"):
        if column not in manifest.columns:
            raise DelicaiteError(f"manifest.csv has no '{column}' column")
    if manifest["patient_id"].duplicated().any():
        duplicate = manifest.loc[manifest["patient_id"].duplicated(), "patient_id"].iloc[0]
        raise DelicaiteError(f"manifest.csv lists patient '{duplicate}' twice")
    missing = sorted(set(manifest["patient_id"]) - set(covariates["patient_id"]))
    if missing:
        raise DelicaiteError(f"covariates.csv has no row for {len(missing)} patient(s), e.g. '{missing[0]}'")
    covariates = covariates.set_index("patient_id").loc[manifest["patient_id"]].reset_index()
    x = encode(validate_table(covariates))
    return x, manifest["therapy"], manifest["pd"]


def train_from_cohort(cohort_dir, out_dir, *, n_ensemble: int = 5, epochs: int | None = None,
                      propensity_weighting: bool = True, cutoff: float = 0.0, seed: int = 0,
                      note: str | None = None, progress=None):
    """Fit an InteractionModel on the cohort and save it (weights + checksummed metadata) to ``out_dir``."""
    from .model import InteractionModel

    x, therapy, pd_outcome = read_training_table(cohort_dir)
    params = {"n_ensemble": n_ensemble, "propensity_weighting": propensity_weighting, "cutoff": cutoff,
              "random_state": seed}
    if epochs is not None:
        params["epochs"] = epochs
    if progress:
        progress(f"training {n_ensemble} ensemble members on {len(x)} patients, {x.shape[1]} features")
    model = InteractionModel(**params).fit(x, therapy, pd_outcome)
    model.save(out_dir, note=note or "research model: not validated for clinical use")
    return model
