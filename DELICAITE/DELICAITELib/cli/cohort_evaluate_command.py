"""`delicaite cohort evaluate` (the study's statistics on a trained model) and `delicaite cohort hcc-tace-seg`
(the real-data section from the public HCC-TACE-Seg table)."""

from __future__ import annotations

import time
from pathlib import Path

from .common import progress


def cmd_cohort_evaluate(args) -> None:
    from ..evaluation.run import REPORT, run_cohort_evaluation

    started = time.perf_counter()
    results = run_cohort_evaluation(args.cohort, args.model, args.out, features=args.features, n_boot=args.n_boot,
                                    seed=args.seed, progress=progress, metric_bootstrap=args.metric_bootstrap)
    what = "single-therapy report" if results["kind"] == "single-therapy cohort" else "report"
    print(f"wrote the {what} to {Path(args.out) / REPORT} (results.json, figures/) in "
          f"{time.perf_counter() - started:.1f} s")


def cmd_cohort_hcc_tace_seg(args) -> None:
    from ..evaluation.run import REPORT, run_hcc_tace_seg

    results = run_hcc_tace_seg(args.table, args.out, progress=progress)
    print(f"wrote the HCC-TACE-Seg section ({results['meta']['n']} patients) to {Path(args.out) / REPORT}")


def add_cohort_parser(cohort_sub) -> None:
    """Add the `evaluate` and `hcc-tace-seg` sub-commands to the `delicaite cohort` group."""
    p = cohort_sub.add_parser("evaluate", help="the study's tables, tests and figures for a trained model: report.html")
    p.add_argument("--cohort", required=True, help="cohort folder with manifest.csv and covariates.csv")
    p.add_argument("--model", required=True, help="model folder written by `delicaite cohort train`")
    p.add_argument("--out", required=True, help="report folder to write (report.html, results.json, figures/)")
    p.add_argument("--features", default=None, help="the features CSV the model was trained with, if any")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates of every CI (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--metric-bootstrap", choices=("stratified", "patient"), default="stratified",
                   help="bootstrap of ACC to F1: stratified by outcome (prevalence fixed) or over patients (PPV and NPV "
                        "then vary with the prevalence too)")
    p.set_defaults(func=cmd_cohort_evaluate)

    h = cohort_sub.add_parser("hcc-tace-seg", help="real-data section: the HCC-TACE-Seg clinical table (all TACE)")
    h.add_argument("--table", required=True, help="HCC-TACE-Seg clinical table (.csv or .xlsx), read in place")
    h.add_argument("--out", required=True, help="report folder to write (report.html, results.json, figures/)")
    h.set_defaults(func=cmd_cohort_hcc_tace_seg)
