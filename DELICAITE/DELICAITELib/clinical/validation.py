"""Validate clinical covariates against the schema: types, units, plausible ranges, required fields.

Numbers are taken in the schema unit; a string may carry its unit ("38.8 g/L"). A value in another
unit is refused, never converted: the contract is that the user converts knowingly. Every problem is
a `ClinicalError` with a one-line message naming the field (and, for tables, the row and column).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import ClinicalError
from .schema import SCHEMA, UNIT_ALIASES, WRONG_UNITS, Field, normalise_unit

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")
_TRUE = {"true", "yes", "y", "t", "1", "1.0", "present", "positive"}
_FALSE = {"false", "no", "n", "f", "0", "0.0", "absent", "negative"}
_CATEGORY_ALIASES = {
    "sex": {"m": "male", "man": "male", "f": "female", "woman": "female"},
    "etiology": {"hepatitis b": "HBV", "hepatitis c": "HCV", "no": "none", "non-viral": "none"},
    "tumour_number": {"≤3": "<=3", "le3": "<=3", "gt3": ">3"},
}
# common names people type for a field, used only to suggest the right key (never accepted silently)
_SYNONYMS = {
    "albumin": "alb", "bilirubin": "tbil", "total_bilirubin": "tbil", "creatinine": "cre", "platelets": "plt",
    "platelet": "plt", "gender": "sex", "ps": "ecog", "performance_status": "ecog", "tumor_number": "tumour_number",
    "tumour_count": "tumour_number", "diameter": "max_diameter", "tumor_size": "max_diameter",
    "size": "max_diameter", "portal_vein_thrombosis": "pvtt", "pvt": "pvtt", "alpha_fetoprotein": "afp",
    "hepatitis": "etiology", "aetiology": "etiology", "cps": "child_pugh", "childpugh": "child_pugh",
    "mets": "metastasis", "metastases": "metastasis", "crea": "cre", "creat": "cre",
}


def is_missing(value) -> bool:
    """None, NaN, pandas NA or blank text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)


def _parse_number(f: Field, value) -> float:
    """The value as a float in the schema unit, or ClinicalError (text, wrong or unknown unit)."""
    expected = f"a number in {f.unit}" if f.unit else "a number"
    if isinstance(value, (bool, np.bool_)):
        raise ClinicalError(f"{f.label} ({f.name}) = {value} is a yes/no value; expected {expected}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if not isinstance(value, str):
        raise ClinicalError(f"{f.label} ({f.name}) = {value!r} has type {type(value).__name__}; expected {expected}")
    m = _NUMBER.match(value)
    if not m:
        raise ClinicalError(f"{f.label} ({f.name}) = {value!r} is not a number; expected {expected}")
    number, unit = float(m.group(1)), m.group(2)
    if unit:
        _check_unit(f, unit)
    return number


def _check_unit(f: Field, unit: str) -> None:
    u = normalise_unit(unit)
    accepted = {normalise_unit(a) for a in UNIT_ALIASES.get(f.name, ())}
    if f.unit:
        accepted.add(normalise_unit(f.unit))
    if u in accepted:
        return
    if not f.unit and not accepted:
        raise ClinicalError(f"{f.label} ({f.name}) takes no unit, got {unit!r}")
    if u in {normalise_unit(w) for w in WRONG_UNITS.get(f.name, ())}:
        raise ClinicalError(f"{f.label} ({f.name}) is given in {unit}; enter it in {f.unit} (not converted automatically)")
    raise ClinicalError(f"{f.label} ({f.name}) unit {unit!r} is not recognised; enter it in {f.unit or 'no unit'}")


def _validate_number(f: Field, value):
    x = _parse_number(f, value)
    if not math.isfinite(x):
        raise ClinicalError(f"{f.label} ({f.name}) = {_show(value)} is not a finite number")
    lo, hi = f.range
    if not lo <= x <= hi:
        raise ClinicalError(
            f"{f.label} ({f.name}) = {x:g}{f.unit_text()} is outside the plausible range {f.range_text()}")
    if f.kind == "integer":
        if not float(x).is_integer():
            raise ClinicalError(f"{f.label} ({f.name}) = {x:g} is not a whole number")
        return int(x)
    return x


def _validate_binary(f: Field, value) -> int:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value) in (0.0, 1.0):
        return int(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise ClinicalError(f"{f.label} ({f.name}) = {_show(value)} is not yes/no; use true/false, yes/no or 1/0")


def _validate_category(f: Field, value) -> str:
    if f.name == "tumour_number" and isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return "<=3" if value <= 3 else ">3"  # a nodule count is a fine way to say it
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)  # BCLC 0 read from a spreadsheet as 0.0
    text = re.sub(r"\s+", "", str(value)).lower() if f.name == "tumour_number" else str(value).strip().lower()
    if f.name == "bclc":
        text = re.sub(r"^stage[\s_-]*", "", text)
    lookup = {a.lower(): a for a in f.allowed}
    lookup.update(_CATEGORY_ALIASES.get(f.name, {}))
    if text in lookup:
        return lookup[text]
    raise ClinicalError(f"{f.label} ({f.name}) = {_show(value)} is not one of {', '.join(f.allowed)}")


def validate_value(name: str, value):
    """One field's value, normalised (float, int 0/1, int or canonical str), or None when missing."""
    f = SCHEMA[name]
    if is_missing(value):
        return None
    if f.kind in ("continuous", "integer"):
        return _validate_number(f, value)
    if f.kind == "binary":
        return _validate_binary(f, value)
    return _validate_category(f, value)


def suggest_field(key: str) -> str | None:
    """The schema field a mistyped key most likely meant, or None."""
    k = str(key).strip().lower().replace(" ", "_").replace("-", "_")
    if k in _SYNONYMS:
        return _SYNONYMS[k]
    candidates = {n: n for n in SCHEMA} | {f.label.lower(): n for n, f in SCHEMA.items()} | dict(_SYNONYMS)
    close = difflib.get_close_matches(k, list(candidates), n=1, cutoff=0.5)
    return candidates[close[0]] if close else None


def _unknown_key_message(key) -> str:
    hint = suggest_field(key)
    return f"unknown field {str(key)!r}" + (f"; did you mean {hint!r}?" if hint else f"; known fields: {', '.join(SCHEMA)}")


def _resolve_keys(keys) -> dict:
    """Map input keys to schema names (case-insensitive); raise on unknown or duplicate keys."""
    by_lower = {n.lower(): n for n in SCHEMA}
    resolved = {}
    for key in keys:
        name = by_lower.get(str(key).strip().lower())
        if name is None:
            raise ClinicalError(_unknown_key_message(key))
        if name in resolved.values():
            raise ClinicalError(f"field {name} is given twice (as {[k for k, v in resolved.items() if v == name] + [key]})")
        resolved[key] = name
    return resolved


def _missing_message(f: Field) -> str:
    unit = f", {f.unit}" if f.unit else ""
    return f"missing required field {f.label} ({f.name}{unit})"


def validate_record(record: Mapping, *, require: bool = True) -> dict:
    """Validate one patient's covariates; return {field: normalised value or None} for every schema field.

    `require=False` lets required fields be missing (e.g. a public table that lacks them).
    """
    if not isinstance(record, Mapping):
        raise ClinicalError(f"a clinical record must be a mapping of field to value, got {type(record).__name__}")
    keys = _resolve_keys(record.keys())
    given = {name: record[key] for key, name in keys.items()}
    out = {}
    for name, f in SCHEMA.items():
        value = validate_value(name, given.get(name))
        if value is None and f.required and require:
            raise ClinicalError(_missing_message(f))
        out[name] = value
    return out


def validate_table(df: pd.DataFrame, *, require: bool = True, id_column: str = "patient_id",
                   extra: str = "error") -> pd.DataFrame:
    """Validate every row of a covariate table; return it normalised, index kept.

    Columns: `id_column` (when present) then every schema field; numbers as float (NaN when
    missing), categories as canonical strings (None when missing). Columns that are not schema
    fields raise, unless extra="ignore". All problems are collected; the ClinicalError message
    shows the first three ("row 3 (patient HCC_003), column alb: ALB (alb) = -5 g/L is outside …")
    and counts the rest; the full list is its `problems` attribute, one line each.
    """
    if not isinstance(df, pd.DataFrame):
        raise ClinicalError(f"validate_table needs a pandas DataFrame, got {type(df).__name__}")
    if extra not in ("error", "ignore"):
        raise ValueError(f"validate_table: extra must be 'error' or 'ignore', got {extra!r}")
    columns = [c for c in df.columns if c != id_column]
    by_lower = {n.lower(): n for n in SCHEMA}
    problems, names = [], {}
    for col in columns:
        name = by_lower.get(str(col).strip().lower())
        if name is None:
            if extra == "error":
                problems.append(f"column {col}: {_unknown_key_message(col)}")
        elif name in names.values():
            problems.append(f"column {col}: field {name} is given twice")
        else:
            names[col] = name
    ids = df[id_column].tolist() if id_column in df else None
    values = {name: [] for name in SCHEMA}
    source = {name: col for col, name in names.items()}
    for i, (_, row) in enumerate(df.iterrows()):
        where = f"row {i + 1}" + (f" (patient {ids[i]})" if ids is not None else "")
        for name, f in SCHEMA.items():
            col = source.get(name)
            try:
                v = validate_value(name, row[col]) if col is not None else None
                if v is None and f.required and require:
                    raise ClinicalError(_missing_message(f))
            except ClinicalError as err:
                problems.append(f"{where}, column {col or name}: {err}")
                v = None
            values[name].append(v)
    if problems:
        more = f" (+{len(problems) - 3} more problems)" if len(problems) > 3 else ""
        err = ClinicalError("; ".join(problems[:3]) + more)
        err.problems = problems
        raise err
    out = pd.DataFrame(index=df.index)
    if ids is not None:
        out[id_column] = ids
    for name, f in SCHEMA.items():
        if f.kind == "categorical":
            out[name] = pd.Series(values[name], index=df.index, dtype=object)
        else:
            out[name] = pd.Series([np.nan if v is None else float(v) for v in values[name]], index=df.index, dtype=float)
    return out
