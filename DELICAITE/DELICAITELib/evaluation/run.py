"""Write an evaluation report folder: results.json (every number), figures/*.png, report.html and, for a
two-therapy cohort, predictions.csv (one row per patient: set, predictions, h, recommendation, group).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..cohort import read_cohort
from ..storage import write_text_atomically
from ..cohort.trained import load_trained
from .cohort_evaluation import evaluate_cohort
from .cohort_html import cohort_html
from .common import round_trip
from .figures import cohort_figures
from .single_therapy import (HCC_TACE_SEG_SOURCE, cohort_single_frame, evaluate_single_therapy, hcc_tace_seg_frame,
                             single_therapy_figures)
from .html import single_therapy_html

RESULTS, REPORT, PREDICTIONS = "results.json", "report.html", "predictions.csv"
PREDICTION_COLUMNS = ["patient_id", "centre", "set", "therapy", "pd", "os_months", "os_event", "h", "h_lo", "h_hi",
                      "recommendation", "group", "true_h", "propensity", "oracle_best"]


def _write(out_dir: Path, results: dict, render: Callable[[dict], str]) -> dict:
    """results.json first, then the HTML rendered from exactly what it holds."""
    stored = round_trip(results)
    write_text_atomically(out_dir / RESULTS, json.dumps(stored, indent=1, ensure_ascii=False))
    write_text_atomically(out_dir / REPORT, render(stored))
    return stored


def _single(out_dir: Path, frame: pd.DataFrame, source: str, missing, title: str, banner: list[str], extra=None) -> dict:
    results = evaluate_single_therapy(frame, source, missing)
    results["meta"].update(extra or {})
    results["figures"] = single_therapy_figures(out_dir, frame)
    return _write(out_dir, results, lambda r: single_therapy_html(r, r["figures"], out_dir, title, banner))


def run_cohort_evaluation(cohort_dir, model_dir, out_dir, features=None, n_boot: int = 2000, seed: int = 0,
                          progress: Callable[[str], None] | None = None, metric_bootstrap: str = "stratified") -> dict:
    """Evaluate MODEL_DIR on the cohort folder and write the report folder; returns results.json's content."""
    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cohort = read_cohort(cohort_dir, check_image_paths=False)
    therapies = sorted(set(map(str, cohort.therapy)))
    if len(therapies) == 1:
        reason = (f"every patient of this cohort received {therapies[0]}: only the single-therapy analyses are run "
                  "(no interaction, Maintain/Alter or policy comparison is possible; the model is not used)")
        say(reason)
        return _single(out, cohort_single_frame(cohort), f"cohort folder {Path(cohort_dir).name}", (),
                       "DELICAITE cohort evaluation: single-therapy cohort", [reason[0].upper() + reason[1:] + "."],
                       {"single_therapy_reason": reason})
    trained = load_trained(model_dir)
    say(f"evaluating {', '.join(trained.names)} on {len(cohort)} patients")
    results, frame = evaluate_cohort(cohort, trained, features, n_boot=n_boot, seed=seed, progress=say,
                                     metric_bootstrap=metric_bootstrap)
    say("figures and report")
    results["figures"] = cohort_figures(out, round_trip(results), frame)
    frame[[c for c in PREDICTION_COLUMNS + [f"p_{n}" for n in trained.names] if c in frame]].to_csv(
        out / PREDICTIONS, index=False)
    return _write(out, results, lambda r: cohort_html(r, r["figures"], out))


def run_hcc_tace_seg(table, out_dir, progress: Callable[[str], None] | None = None) -> dict:
    """The real-data section: the HCC-TACE-Seg clinical table (all TACE) through the single-therapy analyses."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if progress:
        progress("HCC-TACE-Seg: Table 1 by AFP group, logistic regression for PD, Kaplan–Meier by AFP and BCLC")
    frame, missing = hcc_tace_seg_frame(table)
    banner = ["Real data, one therapy (TACE): the single-therapy parts of the study's analysis. PD is reader 1's "
              "mRECIST response after TACE."]
    return _single(out, frame, HCC_TACE_SEG_SOURCE, missing, "HCC-TACE-Seg: real-data section", banner)
