"""Cohort evaluation: the study's statistics for a model written by `delicaite cohort train`, as a report.

- `cohort_evaluation.evaluate_cohort(cohort, trained, ...)` → (results dict, per-patient frame);
  `outcomes` (Maintain vs Alter survival, IPW policy value, truth panel); `single_therapy` (the parts that
  apply when everyone received one therapy, and the real HCC-TACE-Seg table).
- `figures` (PNG), `html` / `cohort_html` (the pages), `run` (writes REPORT_DIR: results.json,
  figures/, report.html, predictions.csv).
"""

from .run import run_cohort_evaluation, run_hcc_tace_seg

__all__ = ["run_cohort_evaluation", "run_hcc_tace_seg"]
