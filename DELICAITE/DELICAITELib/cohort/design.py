"""A cohort's design frame: one row per patient with ids, centre, therapy, outcomes, the encoded
covariates and the feature columns of a features table (joined on patient_id).

Training, evaluation and deep-feature work all start from it; the model bundle takes its rows as raw
inputs, exactly as it takes a new case's row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..clinical import encode, encoded_columns, validate_table
from ..errors import DelicaiteError
from .folder import Cohort

BASE_COLUMNS = ["patient_id", "centre", "therapy", "pd", "os_months", "os_event"]
DEEP_PREFIX = "deep_"


def read_features_table(path) -> pd.DataFrame:
    """A features CSV (patient_id + numeric feature columns), ids as text and floats exactly as written."""
    path = Path(path)
    if not path.is_file():
        raise DelicaiteError(f"features file not found: {path}")
    return pd.read_csv(path, dtype={"patient_id": str}, float_precision="round_trip")


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
        table = read_features_table(features) if isinstance(features, (str, Path)) else features
        frame = _join_features(frame, table)
    return frame


def column_groups(frame: pd.DataFrame) -> dict[str, list[str]]:
    """clinical (encoded covariates), radiomics (other feature columns) and deep (prefix deep_) columns."""
    known = set(BASE_COLUMNS) | set(encoded_columns())
    extra = [str(c) for c in frame.columns if c not in known]
    return {"clinical": encoded_columns(), "radiomics": [c for c in extra if not c.startswith(DEEP_PREFIX)],
            "deep": [c for c in extra if c.startswith(DEEP_PREFIX)]}
