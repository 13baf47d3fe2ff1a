"""Shared pieces of the evaluation reports: set names, JSON-safe values, tables as records, number formats.

results.json is strict JSON: NaN becomes null and an infinite value (a median survival that is never
reached) the string "inf"; the HTML is rendered from the JSON round trip, so every number it shows is
one that results.json holds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from ..recommendation import ALTER, MAINTAIN  # noqa: F401 — the groups, named where the rule lives
from ..recommendation import NEITHER as NO_PREFERENCE  # noqa: F401

SETS = ("training", "internal_test", "external_test")
TEST_SETS = ("internal_test", "external_test")
ALL = "all"
ALL_TEST = "all_test"  # the pooled sections: test patients only, the in-sample training set left out
SET_LABELS = {"training": "Training", "internal_test": "Internal test", "external_test": "External test",
              ALL: "All patients", ALL_TEST: "All test patients (internal + external)"}
IN_SAMPLE = "Training (in-sample: the models were fitted on these patients)"
MIN_GROUP_FOR_P = 10  # no p-value for a comparison with a group smaller than this
MIN_CELL = 10  # patients per therapy × Maintain/Alter cell for a Maintain vs Alter hazard ratio
EXTRA_LABELS = {"afp_ge_400": "AFP ≥ 400 ng/mL", "therapy": "Therapy", "pd": "Progressive disease (PD)",
                "set": "Set"}


def jsonable(obj):
    """obj with numpy scalars and arrays as Python values, NaN as None and ±inf as "inf"/"-inf"."""
    if isinstance(obj, dict):
        return {(" vs ".join(map(str, k)) if isinstance(k, tuple) else str(k)): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return table_records(obj)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isnan(v):
            return None
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def round_trip(results: dict) -> dict:
    """results as results.json will hold them (what the HTML is rendered from)."""
    return json.loads(json.dumps(jsonable(results), allow_nan=False))


def table_records(df: pd.DataFrame) -> dict:
    """A DataFrame as {columns, rows, notes, plus its other attrs}: JSON-friendly and order-preserving."""
    out = {"columns": [str(c) for c in df.columns], "rows": [jsonable(list(r)) for r in df.itertuples(index=False)]}
    for key, value in df.attrs.items():
        out[key] = jsonable(value)
    out.setdefault("notes", [])
    return out


def num(v) -> float:
    """A JSON value as a float: None → NaN, "inf" → inf."""
    if v is None:
        return float("nan")
    if isinstance(v, str):
        return float(v)
    return float(v)


def fmt(v, digits: int = 3) -> str:
    x = num(v)
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "NR" if x > 0 else "−inf"
    return f"{x:.{digits}f}"


def fmt_ci(triple, digits: int = 3) -> str:
    """(value, lo, hi) as "0.701 (0.640–0.766)"; "–" where the value is undefined."""
    v, lo, hi = triple
    if math.isnan(num(v)):
        return "–"
    return f"{fmt(v, digits)} ({fmt(lo, digits)}–{fmt(hi, digits)})"


def fmt_p(p) -> str:
    """A p-value as the paper prints it: "<0.001", else three decimals; "–" when there is none."""
    x = num(p)
    if math.isnan(x):
        return "–"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def fmt_or(triple) -> str:
    """An odds ratio with its CI: two decimals, three when it is close to 1 (per-unit effects)."""
    v, lo, hi = (num(x) for x in triple)
    if math.isnan(v):
        return "–"
    digits = 3 if abs(math.log(v)) < 0.05 and 0.9 < lo and hi < 1.1 else 2
    return f"{v:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def fmt_median(group: dict, digits: int = 1) -> str:
    """Median survival with its CI from a km_groups group entry, "NR" where not reached."""
    return fmt_ci((group["median"], group["median_lo"], group["median_hi"]), digits)
