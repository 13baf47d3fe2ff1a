"""Encode validated clinical covariates as float model inputs with stable, documented column names.

Columns (`encoded_columns()`, in this order):

- continuous fields as they are, in schema units: ``age, alb, pt, inr, plt, cre, max_diameter``;
- skewed labs as ``log1p``: ``log_alt, log_ast, log_tbil, log_crp, log_afp``;
- integers as they are: ``ecog, child_pugh``;
- binary fields as 0/1: ``comorbidity, ascites, pvtt, metastasis``;
- categorical fields one-hot against a fixed reference level (the study's most common one, or
  the mildest BCLC stage): ``sex_female`` (ref. male), ``etiology_none, etiology_hcv, etiology_other``
  (ref. HBV), ``tumour_number_gt3`` (ref. <=3), ``bclc_0, bclc_B, bclc_C, bclc_D`` (ref. A);
- ``afp_ge_400``: AFP ≥ 400 ng/mL (the study's threshold, Table 1 and Table 2).

A missing value stays NaN in every column it feeds (imputation belongs to the model, which also fits
the scaler; nothing is fitted here). The input index is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ClinicalError
from .schema import SCHEMA

LOG_FIELDS = ("alt", "ast", "tbil", "crp", "afp")
AFP_THRESHOLD = 400.0  # ng/mL

# (field, reference level, {level: column}) for every categorical field
ONE_HOT = (
    ("sex", "male", {"female": "sex_female"}),
    ("etiology", "HBV", {"none": "etiology_none", "HCV": "etiology_hcv", "other": "etiology_other"}),
    ("tumour_number", "<=3", {">3": "tumour_number_gt3"}),
    ("bclc", "A", {"0": "bclc_0", "B": "bclc_B", "C": "bclc_C", "D": "bclc_D"}),
)

_COLUMNS = (
    ["age", "sex_female", "ecog", "comorbidity", "etiology_none", "etiology_hcv", "etiology_other", "ascites",
     "alb", "log_alt", "log_ast", "log_tbil", "pt", "inr", "plt", "log_crp", "cre", "child_pugh",
     "max_diameter", "tumour_number_gt3", "pvtt", "metastasis", "bclc_0", "bclc_B", "bclc_C", "bclc_D",
     "log_afp", "afp_ge_400"]
)


def encoded_columns() -> list[str]:
    """The encoded column names, in the order `encode` returns them (a fresh list each call)."""
    return list(_COLUMNS)


def _as_frame(data) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame([dict(data)])
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return pd.DataFrame([dict(r) for r in data])
    raise ClinicalError(f"encode: expected a dict, a list of dicts or a DataFrame, got {type(data).__name__}")


def _numeric(frame: pd.DataFrame, name: str) -> pd.Series:
    """Column `name` as float, NaN where missing or absent; text (e.g. a unit) means 'validate first'."""
    if name not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    col = frame[name]
    try:
        return pd.to_numeric(col.where(col.notna(), np.nan), errors="raise").astype(float)
    except (ValueError, TypeError):
        bad = next(v for v in col if _not_number(v))
        raise ClinicalError(
            f"encode: {SCHEMA[name].label} ({name}) has non-numeric value {bad!r}; run validate_record/validate_table first"
        ) from None


def _not_number(v) -> bool:
    try:
        float(v)
        return False
    except (TypeError, ValueError):
        return True


def _categorical(frame: pd.DataFrame, name: str) -> pd.Series:
    """Column `name` as canonical strings (None where missing); an unknown level is refused."""
    f = SCHEMA[name]
    if name not in frame:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    out = []
    for v in frame[name]:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            out.append(None)
            continue
        s = str(int(v)) if isinstance(v, (int, np.integer, float)) and float(v).is_integer() else str(v)
        if s not in f.allowed:
            raise ClinicalError(
                f"encode: {f.label} ({name}) = {v!r} is not one of {', '.join(f.allowed)}; run validate_record/validate_table first"
            )
        out.append(s)
    return pd.Series(out, index=frame.index, dtype=object)


def encode(data) -> pd.DataFrame:
    """Encode validated covariates (a dict, a list of dicts or a DataFrame) as a float DataFrame.

    Columns are `encoded_columns()`; columns of the input that are not schema fields (patient_id,
    therapy, outcomes) are ignored. Values must already be in schema units (see `validate_record`).
    """
    frame = _as_frame(data)
    out = pd.DataFrame(index=frame.index)
    for name, f in SCHEMA.items():
        if f.kind == "categorical":
            continue
        x = _numeric(frame, name)
        if name in LOG_FIELDS:
            if (x < 0).any():
                raise ClinicalError(f"encode: {f.label} ({name}) has a negative value; run validate_record/validate_table first")
            out[f"log_{name}"] = np.log1p(x)
        else:
            out[name] = x
    for name, ref, columns in ONE_HOT:
        levels = _categorical(frame, name)
        missing = levels.isna()
        for level, col in columns.items():
            out[col] = np.where(missing, np.nan, (levels == level).astype(float))
    afp = _numeric(frame, "afp")
    out["afp_ge_400"] = np.where(afp.isna(), np.nan, (afp >= AFP_THRESHOLD).astype(float))
    return out[_COLUMNS].astype(float)
