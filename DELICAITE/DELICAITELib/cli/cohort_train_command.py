"""`delicaite cohort train`: DELICAITE and the study's comparators, split by centre (see cohort/training.py)."""

from __future__ import annotations

import time

DEFAULT_DEEP_COMPONENTS = 8  # cohort/training.py's default, kept here so `--help` needs no model import
ESTIMATORS = ("interaction-network", "tian-lasso")  # bundle/fit.py's


def add_estimator_argument(parser) -> None:
    parser.add_argument("--estimator", choices=ESTIMATORS, default="interaction-network",
                        help="DELICAITE's interaction network (default) or Tian's modified-covariate lasso (linear h; "
                             "fast, for small cohorts)")
from .common import progress


def cmd_cohort_train(args) -> None:
    from ..cohort.training import train_cohort

    started = time.perf_counter()
    summary = train_cohort(args.cohort, args.out, args.features, estimator=args.estimator, seed=args.seed,
                           ensemble=args.ensemble,
                           epochs=args.epochs, quick=args.quick, deep_components=args.deep_components,
                           progress=progress).summary
    n = summary["splits"]["n"]
    print(f"trained {', '.join(summary['names'])} on {summary['n_training']} patients "
          f"(internal test {n['internal_test']}, external test {n['external_test']}) in "
          f"{time.perf_counter() - started:.1f} s; written to {args.out}")


def add_cohort_parser(cohort_sub) -> None:
    """Add the `train` sub-command to the `delicaite cohort` group."""
    p = cohort_sub.add_parser("train", help="train DELICAITE and the comparators with splits by centre")
    p.add_argument("--cohort", required=True, help="cohort folder with manifest.csv and covariates.csv")
    p.add_argument("--out", required=True, help="model folder to write (MODEL_DIR)")
    p.add_argument("--features", default=None, help="features CSV (patient_id + feature columns; deep_* = deep features)")
    p.add_argument("--deep-components", type=int, default=DEFAULT_DEEP_COMPONENTS,
                   help="principal components of the deep_* columns that DELICAITE sees, fitted on the training set "
                        f"(default {DEFAULT_DEEP_COMPONENTS}; 0: the raw columns)")
    add_estimator_argument(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the splits and of every model")
    p.add_argument("--ensemble", type=int, default=None, help="DELICAITE ensemble size (default 20; 2 with --quick)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of DELICAITE's members and of the MLPs (default: 300 and 120; 150 and 60 with --quick)")
    p.add_argument("--quick", action="store_true", help="fewer ensemble members, epochs and grid points (trials, tests)")
    p.set_defaults(func=cmd_cohort_train)
