"""`delicaite simulate`, `delicaite train` and the `delicaite cohort` group (features, train, evaluate)."""

from __future__ import annotations

import time

from . import cohort_evaluate_command, cohort_features_command, cohort_train_command
from .common import progress


def cmd_simulate(args) -> None:
    from ..cohort import write_cohort
    from ..simulate import simulate_cohort

    cohort = simulate_cohort(n=args.n, seed=args.seed, n_centres=args.centres, assignment=args.assignment,
                             disease_control=tuple(args.disease_control))
    write_cohort(cohort, args.out)
    print(f"wrote a simulated cohort of {args.n} patients ({args.assignment} therapy choice) to {args.out}")


def cmd_train(args) -> None:
    from ..cohort.training import train_cohort

    started = time.perf_counter()
    trained = train_cohort(args.cohort, args.out, args.features, by_centre=False, comparators=False,
                           estimator=args.estimator, ensemble=args.ensemble, epochs=args.epochs, propensity_weighting=not args.no_propensity,
                           cutoff=args.cutoff, seed=args.seed, deep_components=args.deep_components, progress=progress)
    print(f"trained on {trained.summary['n_training']} patients in {time.perf_counter() - started:.1f} s; "
          f"model written to {args.out}")


def add_parsers(sub) -> None:
    simulate = sub.add_parser("simulate", help="write a simulated cohort with a known interaction")
    simulate.add_argument("--n", type=int, default=900)
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--centres", type=int, default=3)
    simulate.add_argument("--assignment", choices=["physician", "randomized"], default="physician")
    simulate.add_argument("--disease-control", nargs=2, type=float, default=[0.273, 0.805], metavar=("TACE", "HAIC"),
                          help="disease-control rates under the physician choice (default: the study's primary set, "
                               "0.273 and 0.805); the truth's intercepts are solved for them")
    simulate.add_argument("--out", required=True)
    simulate.set_defaults(func=cmd_simulate)

    train = sub.add_parser("train", help="train the interaction model on every patient of a cohort folder")
    train.add_argument("--cohort", required=True, help="cohort folder with manifest.csv and covariates.csv")
    train.add_argument("--out", required=True, help="model folder to write")
    train.add_argument("--features", default=None, help="features CSV of `delicaite cohort features` (default: "
                                                        "clinical covariates only)")
    train.add_argument("--deep-components", type=int, default=cohort_train_command.DEFAULT_DEEP_COMPONENTS,
                       help="principal components of the deep_* columns the model sees (0: the raw columns)")
    cohort_train_command.add_estimator_argument(train)
    train.add_argument("--ensemble", type=int, default=20, help="ensemble size of the network (gives the spread of h)")
    train.add_argument("--epochs", type=int, default=None, help="training epochs per member (default: model's)")
    train.add_argument("--no-propensity", action="store_true", help="no inverse-propensity weights (randomized cohort)")
    train.add_argument("--cutoff", type=float, default=0.0, help="recommendation cutoff c on |h|")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train)

    cohort = sub.add_parser("cohort", help="cohort work: batch features, training with comparators, evaluation report")
    cohort_sub = cohort.add_subparsers(dest="cohort_command", required=True)
    for command in (cohort_features_command, cohort_train_command, cohort_evaluate_command):
        command.add_cohort_parser(cohort_sub)
