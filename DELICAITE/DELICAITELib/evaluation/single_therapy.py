"""The parts of the study's analysis that apply when every patient received the same therapy.

With one therapy there is no interaction, no Maintain/Alter and no policy to compare; what remains is
the baseline table (here by AFP ≥ 400 vs < 400 ng/mL, the study's AFP grouping), uni/multivariate
logistic regression for PD, and Kaplan–Meier OS by AFP group and by BCLC stage with the log-rank test.
Used for a single-therapy cohort folder and for the public HCC-TACE-Seg table (105 patients, all TACE),
read with `clinical.hcc_tace_seg.load_hcc_tace_seg`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..clinical.hcc_tace_seg import load_hcc_tace_seg
from ..clinical.schema import SCHEMA
from ..cohort import Cohort
from ..stats import km_groups, table1
from .cohort_evaluation import logistic_for_pd
from .figures import km_figure

AFP_HIGH, AFP_LOW = "AFP ≥ 400", "AFP < 400"
AFP_ORDER = [AFP_LOW, AFP_HIGH]
HCC_TACE_SEG_SOURCE = ("HCC-TACE-Seg clinical table (The Cancer Imaging Archive, Moawad et al., "
                       "doi:10.7937/TCIA.5FNA-0924): 105 patients, all treated with TACE")
MIN_EVENTS_PER_VARIABLE = 10


def cohort_single_frame(cohort: Cohort) -> pd.DataFrame:
    """patient_id, covariates (schema units), therapy, pd, os_months, os_event of a cohort."""
    frame = cohort.covariates.reset_index(drop=True).copy()
    frame.insert(0, "patient_id", np.asarray(cohort.patient_id, dtype=str))
    frame["therapy"] = np.asarray(cohort.therapy, dtype=str)
    frame["pd"] = pd.to_numeric(pd.Series(cohort.pd), errors="coerce").to_numpy(float)
    frame["os_months"] = np.asarray(cohort.os_months, dtype=float)
    frame["os_event"] = pd.to_numeric(pd.Series(cohort.os_event), errors="coerce").to_numpy(float)
    return frame


def hcc_tace_seg_frame(table) -> tuple[pd.DataFrame, list[str]]:
    """The HCC-TACE-Seg table as a single-therapy frame, and the schema fields it lacks."""
    covariates, outcomes = load_hcc_tace_seg(table)
    frame = covariates.merge(outcomes, on="patient_id", how="left", validate="one_to_one")
    frame["therapy"] = "TACE"
    return frame, list(covariates.attrs.get("missing_fields", []))


def _covariates(frame: pd.DataFrame) -> pd.DataFrame:
    fields = [c for c in SCHEMA if c in frame and frame[c].notna().any()]
    return frame[["patient_id", *fields]]


def _km(frame: pd.DataFrame, column: str, order) -> dict:
    d = frame[frame[column].notna() & frame["os_months"].notna() & frame["os_event"].notna()]
    out = km_groups(d["os_months"], d["os_event"], d[column].astype(str), order=order)
    out["pairwise"] = [{"a": a, "b": b, "p": p} for (a, b), p in out.get("pairwise", {}).items()]
    out["n_left_out"] = int(len(frame) - len(d))
    return out


def evaluate_single_therapy(frame: pd.DataFrame, source: str, missing_fields=()) -> dict:
    """Table 1 by AFP group, the logistic table for PD and KM of OS by AFP group and BCLC stage."""
    frame = frame.copy()
    frame["afp_group"] = np.where(frame["afp"].isna(), None, np.where(frame["afp"] >= 400, AFP_HIGH, AFP_LOW))
    cov = _covariates(frame)
    therapies = sorted(frame["therapy"].dropna().unique())
    results = {"kind": "single-therapy cohort",
               "meta": {"source": source, "n": int(len(frame)), "therapy": ", ".join(therapies),
                        "missing_fields": list(missing_fields), "n_pd_known": int(frame["pd"].notna().sum()),
                        "n_afp_missing": int(frame["afp"].isna().sum())}}
    t1 = cov.drop(columns="patient_id").assign(afp_group=frame["afp_group"], pd=frame["pd"])
    variables = [c for c in t1.columns if c != "afp_group"]
    results["table1"] = table1(t1, "afp_group", variables=variables, categorical=["pd"], groups=AFP_ORDER)
    known = frame["pd"].notna().to_numpy()
    logistic = logistic_for_pd(cov[known], frame.loc[known, "pd"].to_numpy(float))
    chosen = logistic["table"].attrs.get("multivariate", [])
    if chosen and logistic["n_pd"] < MIN_EVENTS_PER_VARIABLE * len(chosen):
        logistic["table"].attrs["notes"].append(
            f"{logistic['n_pd']} PD events for {len(chosen)} multivariate variable(s): fewer than "
            f"{MIN_EVENTS_PER_VARIABLE} events per variable, so the multivariate odds ratios are unstable")
    results["table2"] = logistic
    bclc_order = sorted(frame["bclc"].dropna().astype(str).unique()) if "bclc" in frame else []
    results["survival"] = {"afp": _km(frame, "afp_group", AFP_ORDER)}
    if bclc_order:
        results["survival"]["bclc"] = _km(frame, "bclc", bclc_order)
    return results


def single_therapy_figures(out_dir: Path, frame: pd.DataFrame) -> dict[str, str]:
    """KM of OS by AFP group and by BCLC stage under out_dir/figures; {key: path relative to out_dir}."""
    frame = frame.copy()
    frame["afp_group"] = np.where(frame["afp"].isna(), None, np.where(frame["afp"] >= 400, AFP_HIGH, AFP_LOW))
    fig_dir = Path(out_dir) / "figures"
    written = {"km_afp": km_figure(fig_dir / "km_os_by_afp.png", [(frame, "OS by AFP (ng/mL)", AFP_ORDER)],
                                   group_column="afp_group")}
    if "bclc" in frame and frame["bclc"].notna().any():
        d = frame.assign(bclc=frame["bclc"].map(lambda v: v if pd.isna(v) else f"BCLC {v}"))
        order = sorted(d["bclc"].dropna().unique())
        written["km_bclc"] = km_figure(fig_dir / "km_os_by_bclc.png", [(d, "OS by BCLC stage", order)],
                                       group_column="bclc")
    return {k: str(Path(v).relative_to(out_dir)) for k, v in written.items()}
