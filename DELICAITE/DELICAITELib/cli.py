"""The `delicaite` command: case, simulate, train, demo.

Bad input the user can fix ends with one line, ``error: …``, and exit status 2; progress goes to
stderr so that stdout stays clean for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import __version__
from .errors import DelicaiteError


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _read_clinical(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DelicaiteError(f"clinical file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise DelicaiteError(f"clinical file {path} is not valid JSON (line {err.lineno}: {err.msg})") from None


def _print_result(result: dict, out: Path) -> None:
    score = result["interaction_score"]
    print(f"recommendation: {result['recommendation']}")
    print(f"P(PD | TACE) = {result['risk']['p_pd_tace']:.3f}   P(PD | HAIC) = {result['risk']['p_pd_haic']:.3f}")
    print(f"interaction score h = {score['h']:+.3f}  "
          f"[{score['interval_level']:.0%} interval {score['lower']:+.3f}, {score['upper']:+.3f}]  cutoff {result['cutoff']}")
    print("largest tumour slices: " + ", ".join(f"{s['index']} ({s['area_mm2']:.0f} mm²)" for s in result["slices"]))
    print(f"wrote {out / 'result.json'}, {out / 'report.png'}, {out / 'report.html'}")


def cmd_case(args) -> None:
    from .workflow import run_case

    out = Path(args.out)
    result = run_case(args.ap, args.vp, args.mask, _read_clinical(args.clinical), args.model, out,
                      radiomics_params=args.radiomics_params, include_identifiers=args.include_identifiers,
                      progress=_progress)
    _print_result(result, out)


def cmd_simulate(args) -> None:
    from .cohort import write_cohort
    from .simulate import simulate_cohort

    cohort = simulate_cohort(n=args.n, seed=args.seed, n_centres=args.centres, assignment=args.assignment)
    write_cohort(cohort, args.out)
    print(f"wrote a simulated cohort of {args.n} patients ({args.assignment} therapy choice) to {args.out}")


def cmd_train(args) -> None:
    from .cohort import train_from_cohort

    started = time.perf_counter()
    model = train_from_cohort(args.cohort, args.out, n_ensemble=args.ensemble, epochs=args.epochs,
                              propensity_weighting=not args.no_propensity, cutoff=args.cutoff, seed=args.seed,
                              progress=_progress)
    summary = model.training_summary_
    print(f"trained on {summary['n']} patients in {time.perf_counter() - started:.1f} s; model written to {args.out}")


def cmd_demo(args) -> None:
    from .demo import DEMO_NOTE, run_demo

    out = Path(args.out)
    print("DELICAITE demo: a synthetic two-phase liver CT made by DELICAITE (no patient), a made-up clinical "
          f"record, and the bundled {DEMO_NOTE}.", flush=True)
    result = run_demo(out, progress=_progress)
    _print_result(result, out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="delicaite", description="TACE vs HAIC decision support for large HCC.")
    parser.add_argument("--version", action="version", version=f"delicaite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    case = sub.add_parser("case", help="run one patient's case from CT files to a recommendation report")
    case.add_argument("--ap", required=True, help="arterial phase: DICOM series folder, NIfTI or NRRD")
    case.add_argument("--vp", required=True, help="portal-venous phase (same formats; resampled onto AP if needed)")
    case.add_argument("--mask", required=True, help="label map (1 liver, 2 tumour): NIfTI/NRRD or 3D-IRCADb folder")
    case.add_argument("--clinical", required=True, help="JSON file of clinical covariates (units as in the schema)")
    case.add_argument("--model", required=True, help="model folder (model.json + weights.npz)")
    case.add_argument("--out", required=True, help="output folder")
    case.add_argument("--radiomics-params", help="pyradiomics YAML (default: the bundled, versioned settings)")
    case.add_argument("--include-identifiers", action="store_true",
                      help="write input paths into result.json (off by default: paths often name the patient)")
    case.set_defaults(func=cmd_case)

    simulate = sub.add_parser("simulate", help="write a simulated cohort with a known interaction")
    simulate.add_argument("--n", type=int, default=900)
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--centres", type=int, default=3)
    simulate.add_argument("--assignment", choices=["physician", "randomized"], default="physician")
    simulate.add_argument("--out", required=True)
    simulate.set_defaults(func=cmd_simulate)

    train = sub.add_parser("train", help="train the interaction model on a cohort folder (covariates)")
    train.add_argument("--cohort", required=True, help="cohort folder with manifest.csv and covariates.csv")
    train.add_argument("--out", required=True, help="model folder to write")
    train.add_argument("--ensemble", type=int, default=5, help="ensemble size (gives the interval of h)")
    train.add_argument("--epochs", type=int, default=None, help="training epochs per member (default: model's)")
    train.add_argument("--no-propensity", action="store_true", help="no inverse-propensity weights (randomized cohort)")
    train.add_argument("--cutoff", type=float, default=0.0, help="recommendation cutoff c on |h|")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train)

    demo = sub.add_parser("demo", help="run a whole case on the embedded synthetic case and demo model")
    demo.add_argument("--out", default="demo-out", help="output folder (default: ./demo-out)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DelicaiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
