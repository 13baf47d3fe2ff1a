"""Design frame of a cohort and the models `delicaite cohort train` wrote, loaded for evaluation.

design_frame(cohort, features) → one row per patient: ids, centre, therapy, pd, survival, the encoded
covariates and the feature columns (joined on patient_id). load_trained(MODEL_DIR) → TrainedModels,
whose predict_pd(name, frame) gives P(PD | x, received therapy) for DELICAITE and each comparator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .clinical import encode, encoded_columns, validate_table
from .cohort import Cohort
from .comparators.files import load_comparator, load_inputs
from .comparators.models import Comparator
from .errors import DelicaiteError, ModelFileError

BASE_COLUMNS = ["patient_id", "centre", "therapy", "pd", "os_months", "os_event"]
DEEP_PREFIX = "deep_"
DELICAITE = "delicaite"
SUMMARY_FILE, SPLITS_FILE = "training.json", "splits.csv"
DEEP_REDUCTION = "deep_reduction"  # MODEL_DIR sub-folder: the PCA of the deep features DELICAITE sees
DEFAULT_DEEP_COMPONENTS = 8


def read_features(path) -> pd.DataFrame:
    """A features CSV: patient_id plus numeric feature columns."""
    path = Path(path)
    if not path.is_file():
        raise DelicaiteError(f"features file not found: {path}")
    return pd.read_csv(path, dtype={"patient_id": str})


def _join_features(frame: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    if "patient_id" not in features:
        raise DelicaiteError("the features table has no patient_id column")
    ids = features["patient_id"].astype(str)
    if ids.duplicated().any():
        raise DelicaiteError(f"the features table lists patient {ids[ids.duplicated()].iloc[0]} twice")
    columns = [c for c in features.columns if c != "patient_id"]
    clash = [c for c in columns if c in frame.columns]
    if clash:
        raise DelicaiteError(f"feature column(s) {', '.join(map(str, clash[:5]))} clash with covariate or outcome columns; rename them")
    values = features[columns].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in columns if values[c].isna().sum() > features[c].isna().sum()]
    if bad:
        raise DelicaiteError(f"feature column(s) {', '.join(map(str, bad[:5]))} hold non-numeric values")
    values.index = ids.to_numpy()
    if not frame["patient_id"].isin(values.index).any():
        raise DelicaiteError("no patient of the features table is in the cohort (patient_id values differ)")
    joined = values.reindex(frame["patient_id"].to_numpy())
    joined.index = frame.index
    return pd.concat([frame, joined], axis=1)


def design_frame(cohort: Cohort, features=None) -> pd.DataFrame:
    """patient_id, centre, therapy, pd (NaN when unknown), os_months, os_event, encoded covariates and
    the columns of `features` (a DataFrame or CSV path with patient_id); patients without features get NaN."""
    covariates = cohort.covariates.reset_index(drop=True).copy()
    covariates.insert(0, "patient_id", cohort.patient_id)
    encoded = encode(validate_table(covariates))
    outcome = pd.to_numeric(pd.Series(cohort.pd), errors="coerce")
    if not outcome.dropna().isin([0, 1]).all():
        raise DelicaiteError("pd must be 1 (progressive disease), 0 (disease control) or empty (unknown)")
    frame = pd.DataFrame({"patient_id": np.asarray(cohort.patient_id, dtype=str),
                          "centre": np.asarray(cohort.centre, dtype=str),
                          "therapy": np.asarray(cohort.therapy, dtype=str), "pd": outcome.to_numpy(float),
                          "os_months": np.asarray(cohort.os_months, dtype=float),
                          "os_event": pd.to_numeric(pd.Series(cohort.os_event), errors="coerce").to_numpy(float)})
    frame = pd.concat([frame, encoded.reset_index(drop=True)], axis=1)
    if features is not None:
        frame = _join_features(frame, read_features(features) if isinstance(features, (str, Path)) else features)
    return frame


def column_groups(frame: pd.DataFrame) -> dict[str, list[str]]:
    """clinical (encoded covariates), radiomics (other feature columns) and deep (prefix deep_) columns."""
    known = set(BASE_COLUMNS) | set(encoded_columns())
    extra = [str(c) for c in frame.columns if c not in known]
    return {"clinical": encoded_columns(), "radiomics": [c for c in extra if not c.startswith(DEEP_PREFIX)],
            "deep": [c for c in extra if c.startswith(DEEP_PREFIX)]}


def delicaite_inputs(frame: pd.DataFrame, columns: list[str], medians: np.ndarray) -> pd.DataFrame:
    """The interaction model's inputs: `columns` of the frame, missing values set to the training medians."""
    missing = [c for c in columns if c not in frame]
    if missing:
        raise DelicaiteError(f"the design frame lacks {len(missing)} column(s) DELICAITE was trained on: {', '.join(missing[:5])}")
    x = frame[columns].astype(float)
    return x.fillna(pd.Series(medians, index=columns))


@dataclass
class TrainedModels:
    """What `delicaite cohort train` wrote: splits, DELICAITE, the comparators and their thresholds."""

    directory: Path
    splits: pd.DataFrame
    summary: dict
    delicaite: object  # the InteractionModel: h and the recommendation (use .inputs(frame) as its X)
    delicaite_columns: list[str]
    delicaite_medians: np.ndarray
    comparators: dict[str, Comparator]
    thresholds: dict[str, float]
    deep_reduction: object = None  # DeepFeatureReduction when DELICAITE sees deep features as components

    @property
    def names(self) -> list[str]:
        return [DELICAITE, *self.comparators]

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """DELICAITE's X for rows of a design frame (for interaction_score, recommend, explain)."""
        if self.deep_reduction is not None:
            frame = self.deep_reduction.with_components(frame)
        return delicaite_inputs(frame, self.delicaite_columns, self.delicaite_medians)

    def predict_pd(self, name: str, frame: pd.DataFrame) -> np.ndarray:
        """P(PD | x, received therapy) of model `name` for each row of a design frame."""
        if name == DELICAITE:
            return np.asarray(self.delicaite.predict_risk(self.inputs(frame), frame["therapy"].to_numpy()), float)
        if name not in self.comparators:
            raise DelicaiteError(f"no model named {name!r}; this model folder holds {', '.join(self.names)}")
        return self.comparators[name].predict_pd(frame)


def load_trained(model_dir) -> TrainedModels:
    """Load MODEL_DIR written by `delicaite cohort train`; every model file's checksum is verified."""
    from .model import load_model

    d = Path(model_dir)
    for name in (SUMMARY_FILE, SPLITS_FILE):
        if not (d / name).is_file():
            raise ModelFileError(f"{d / name} is missing; is {d} a folder written by `delicaite cohort train`?")
    summary = json.loads((d / SUMMARY_FILE).read_text(encoding="utf-8"))
    splits = pd.read_csv(d / SPLITS_FILE, dtype={"patient_id": str, "centre": str})
    columns, medians, threshold = load_inputs(d / "delicaite_inputs")
    comparators = {name: load_comparator(d / "comparators" / name) for name in summary["names"] if name != DELICAITE}
    thresholds = {DELICAITE: threshold, **{n: c.threshold for n, c in comparators.items()}}
    reduction = None
    if summary.get("deep_reduction"):
        from .features.deep.reduction import DeepFeatureReduction

        reduction = DeepFeatureReduction.load(d / DEEP_REDUCTION)
    return TrainedModels(directory=d, splits=splits, summary=summary, delicaite=load_model(d / DELICAITE),
                         delicaite_columns=columns, delicaite_medians=medians, comparators=comparators,
                         thresholds=thresholds, deep_reduction=reduction)
