"""Map the public TCIA HCC-TACE-Seg clinical table (Moawad et al., doi:10.7937/TCIA.5FNA-0924) onto
the clinical schema, with its outcomes.

The table (105 patients, all treated with TACE) is read in place, never copied into the repository.
Code meanings come from the workbook's `glossary` sheet; the response codes 1–4 (CR/PR/SD/PD) were
checked against the readings themselves: every code-1 row has a follow-up enhancing diameter of 0,
code-4 rows a median follow-up/baseline ratio of 1.5. `MAPPING` is the documentation of every choice
(`mapping_markdown()` renders it); fields the table lacks stay missing and are listed in
`MISSING_FIELDS`. Times are in weeks in the table and converted to months (1 month = 30.4375/7 weeks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ClinicalError
from .schema import SCHEMA
from .validation import validate_table

WEEKS_PER_MONTH = 30.4375 / 7
ID_COLUMN = "TCIA_ID"


def _codes(table: dict) -> Callable:
    """A transform mapping each source code through `table`; an unknown code is an error."""
    def transform(value):
        if pd.isna(value):
            return None
        key = value.strip() if isinstance(value, str) else int(value) if float(value).is_integer() else value
        if key not in table:
            raise KeyError(value)
        return table[key]
    transform.codes = table
    return transform


def _same(value):
    return None if pd.isna(value) else value


def _weeks_to_months(value):
    return None if pd.isna(value) else float(value) / WEEKS_PER_MONTH


@dataclass(frozen=True)
class ColumnMap:
    """One source column → one schema field (or outcome), with the transform and why."""

    source: str
    target: str
    transform: str
    note: str
    func: Callable = _same


MAPPING: list[ColumnMap] = [
    ColumnMap("age", "age", "as is", "years at diagnosis"),
    ColumnMap("Sex", "sex", "1 → male, 2 → female", "glossary: 1=Male, 2=Female",
              _codes({1: "male", 2: "female"})),
    ColumnMap("hepatitis", "etiology", "HBV only → HBV, HCV only → HCV, HCV and HBV → other, No virus → none",
              "the schema has no co-infection level, so HBV+HCV is 'other'; 'No virus' may hide alcohol or NASH",
              _codes({"HBV only": "HBV", "HCV only": "HCV", "HCV and HBV": "other", "No virus": "none"})),
    ColumnMap("PS_bclc_0_0_1-2_1_3-4_3", "ecog", "0 → 0, 1 → 1, 3 → 3",
              "approximate: the table codes ECOG 1–2 as 1 and ECOG 3–4 as 3 (lower bound kept)",
              _codes({0: 0, 1: 1, 3: 3})),
    ColumnMap("Tr_Size", "max_diameter", "as is (cm)", "tumour size in cm; missing for about half the patients"),
    ColumnMap("tumor_nodul", "tumour_number", "uninodular → <=3, multinodular → >3",
              "approximate: the table does not count nodules, so 2–3 nodules also read as '>3'",
              _codes({"uninodular": "<=3", "multinodular": ">3"})),
    ColumnMap("Portal Vein Thrombosis", "pvtt", "as is (1 = yes)",
              "glossary: Y=1, N=0; the table does not say whether the thrombus is tumour or bland",
              _codes({0: 0, 1: 1})),
    ColumnMap("Metastasis", "metastasis", "as is (1 = yes)", "glossary: Y=1, N=0", _codes({0: 0, 1: 1})),
    ColumnMap("AFP", "afp", "as is (ng/mL)", "glossary: ng/ml; AFP_group (<400, >=400) agrees with it"),
    ColumnMap("BCLC", "bclc", "Stage-A → A … Stage-D → D", "BCLC 1999 staging",
              _codes({"Stage-0": "0", "Stage-A": "A", "Stage-B": "B", "Stage-C": "C", "Stage-D": "D"})),
]

OUTCOME_MAPPING: list[ColumnMap] = [
    ColumnMap(ID_COLUMN, "patient_id", "as is", "HCC_001 … HCC_105"),
    ColumnMap("1_mRECIST", "pd", "4 → 1, 1–3 → 0, blank → missing",
              "reader 1 mRECIST response after TACE: 1 CR, 2 PR, 3 SD, 4 PD; 9 patients have no reading",
              _codes({1: 0, 2: 0, 3: 0, 4: 1})),
    ColumnMap("TTP", "ttp_months", "weeks → months (÷ 30.4375/7)", "time to progression", _weeks_to_months),
    ColumnMap("Censored_0_progressed_1", "progression_event", "as is (1 = progressed)",
              "0 also covers death before progression and a switch away from TACE", _codes({0: 0, 1: 1})),
    ColumnMap("OS", "os_months", "weeks → months (÷ 30.4375/7)", "overall survival", _weeks_to_months),
    ColumnMap("Death_1_StillAliveorLostToFU_0", "os_event", "as is (1 = died)", "0 = alive or lost to follow-up",
              _codes({0: 0, 1: 1})),
]

# Schema fields the table cannot provide, with what it has instead (if anything).
MISSING_FIELDS: dict[str, str] = {
    "comorbidity": "not recorded as such (only Diabetes, one comorbidity among several)",
    "ascites": "not recorded",
    "alb": "no laboratory values in the table",
    "alt": "no laboratory values in the table",
    "ast": "no laboratory values in the table",
    "tbil": "no laboratory values in the table",
    "pt": "no laboratory values in the table",
    "inr": "no laboratory values in the table",
    "plt": "no laboratory values in the table",
    "crp": "no laboratory values in the table",
    "cre": "no laboratory values in the table",
    "child_pugh": "only the Child-Pugh class (CPS: A/B/C), not the 5–15 score",
}

assert {m.target for m in MAPPING}.isdisjoint(MISSING_FIELDS)
assert {m.target for m in MAPPING} | set(MISSING_FIELDS) == set(SCHEMA)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return pd.read_excel(path, sheet_name="data table")
    return pd.read_csv(path)


def _apply(raw: pd.DataFrame, mapping: list[ColumnMap], path: Path) -> pd.DataFrame:
    out = {}
    for m in mapping:
        values = []
        for pid, v in zip(raw[ID_COLUMN], raw[m.source]):
            try:
                values.append(m.func(v))
            except (KeyError, ValueError, TypeError):
                raise ClinicalError(
                    f"{path.name}: patient {pid}, column {m.source!r}: unexpected value {v!r} for {m.target}") from None
        out[m.target] = values
    return pd.DataFrame(out, index=raw.index)


def load_hcc_tace_seg(path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the HCC-TACE-Seg clinical table (CSV, or the workbook's 'data table' sheet).

    Returns (covariates, outcomes). covariates: patient_id + every schema field, validated
    (`validate_table(require=False)`), NaN/None for the fields in `MISSING_FIELDS`; its
    ``attrs["missing_fields"]`` lists them. outcomes: patient_id, pd (float: 1 PD, 0 disease
    control, NaN without a reading), ttp_months, progression_event, os_months, os_event.
    """
    path = Path(path)
    if not path.is_file():
        raise ClinicalError(f"HCC-TACE-Seg clinical table not found: {path}")
    raw = _read(path)
    needed = [ID_COLUMN] + [m.source for m in MAPPING + OUTCOME_MAPPING]
    absent = [c for c in dict.fromkeys(needed) if c not in raw.columns]
    if absent:
        raise ClinicalError(f"{path.name}: not the HCC-TACE-Seg clinical table, columns missing: {', '.join(absent)}")
    mapped = _apply(raw, MAPPING, path)
    mapped.insert(0, "patient_id", raw[ID_COLUMN].astype(str).to_numpy())
    for name in MISSING_FIELDS:
        mapped[name] = np.nan
    covariates = validate_table(mapped, require=False).reset_index(drop=True)
    covariates.attrs["missing_fields"] = list(MISSING_FIELDS)
    outcomes = _apply(raw, OUTCOME_MAPPING, path).reset_index(drop=True)
    outcomes["patient_id"] = outcomes["patient_id"].astype(str)
    outcomes["pd"] = pd.to_numeric(outcomes["pd"], errors="coerce").astype(float)
    for col in ("ttp_months", "os_months"):
        outcomes[col] = outcomes[col].astype(float)
    for col in ("progression_event", "os_event"):
        outcomes[col] = outcomes[col].astype(int)
    order = ["patient_id", "pd", "ttp_months", "progression_event", "os_months", "os_event"]
    return covariates, outcomes[order]


def _md_row(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def mapping_markdown() -> str:
    """The mapping as Markdown: covariates, outcomes, and the schema fields the table lacks."""
    lines = ["## HCC-TACE-Seg clinical table → DELICAITE schema", "",
             "Source: TCIA HCC-TACE-Seg, `HCC-TACE-Seg_clinical_data-V2.xlsx` (sheet `data table`, codes from "
             "sheet `glossary`), 105 patients, all treated with TACE.", "",
             "### Covariates", "", _md_row(["source column", "schema field", "unit", "transform", "note"]),
             _md_row(["---"] * 5)]
    for m in MAPPING:
        lines.append(_md_row([f"`{m.source}`", f"`{m.target}`", SCHEMA[m.target].unit or "", m.transform, m.note]))
    lines += ["", "### Outcomes", "", _md_row(["source column", "outcome", "transform", "note"]), _md_row(["---"] * 4)]
    for m in OUTCOME_MAPPING:
        lines.append(_md_row([f"`{m.source}`", f"`{m.target}`", m.transform, m.note]))
    lines += ["", "### Schema fields the table lacks (left missing)", "", _md_row(["schema field", "why"]),
              _md_row(["---"] * 2)]
    for name, why in MISSING_FIELDS.items():
        lines.append(_md_row([f"`{name}`", why]))
    return "\n".join(lines) + "\n"
