"""`delicaite case` and `delicaite demo`: one patient from CT files to a recommendation report."""

from __future__ import annotations

from pathlib import Path

from ..jsonable import read_json
from .common import progress


def print_result(result, out: Path) -> None:
    """A case result in a few lines (stdout)."""
    p = result.prediction
    print(f"recommendation: {p.recommendation} ({p.reason})")
    print(f"P(PD | TACE) = {p.risk.p_pd_tace:.3f}   P(PD | HAIC) = {p.risk.p_pd_haic:.3f}")
    print(f"interaction score h = {p.score.h:+.3f}  [{p.score.interval_level:.0%} ensemble spread {p.score.lower:+.3f}, "
          f"{p.score.upper:+.3f}]  cutoff {p.cutoff:g}")
    print("largest tumour slices: " + ", ".join(f"{s.index} ({s.area_mm2:.0f} mm²)" for s in result.slices))
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"wrote {out / 'result.json'}, {out / 'report.png'}, {out / 'report.html'}")


def cmd_case(args) -> None:
    from ..case import CaseEngine, write_case_outputs
    from ..errors import DelicaiteError
    from ..segmentation.backends import parse_seed
    from ..storage import check_output_folder, clear_failure, output_lock, record_failure

    out = check_output_folder(args.out)
    seeds = [parse_seed(text) for text in args.tumour_seed or ()]
    with output_lock(out):
        try:
            engine = CaseEngine.for_model(args.model, device=args.device)  # its features are the model's own
            run = engine.run(args.ap, args.vp, args.mask, read_json(args.clinical, "clinical"), progress,
                             include_identifiers=args.include_identifiers, tumour_seeds_ras=seeds)
            write_case_outputs(run, out, engine.bundle.training_h)
        except (DelicaiteError, OSError) as err:
            if record_failure(out, "case", err) is not None and (out / "result.json").exists():
                progress("the previous result in this folder is left as it was; failure.json records this run's error")
            raise
        clear_failure(out)
    print_result(run.result, out)


def cmd_demo(args) -> None:
    from ..demo import DEMO_NOTE, run_demo

    out = Path(args.out)
    print("DELICAITE demo: a synthetic two-phase liver CT made by DELICAITE (no patient), a made-up clinical "
          f"record, and the bundled {DEMO_NOTE}.", flush=True)
    print_result(run_demo(out, progress=progress), out)


def add_parsers(sub) -> None:
    case = sub.add_parser("case", help="run one patient's case from CT files to a recommendation report")
    case.add_argument("--ap", required=True, help="arterial phase: DICOM series folder, NIfTI or NRRD")
    case.add_argument("--vp", required=True, help="portal-venous phase (same formats; resampled onto AP if needed)")
    case.add_argument("--mask", help="label map (1 liver, 2 tumour): NIfTI/NRRD or 3D-IRCADb folder; "
                                     "without it the AP phase is auto-segmented (review the result!)")
    case.add_argument("--tumour-seed", action="append", metavar="R,A,S",
                      help="grow a tumour from this point (mm, as Slicer shows it) in the liver; repeat once per lesion; write --tumour-seed=-60,12,-140 when R is negative")
    case.add_argument("--clinical", required=True, help="JSON file of clinical covariates (units as in the schema)")
    case.add_argument("--model", required=True, help="model folder (written by `delicaite cohort train` or "
                                                     "`delicaite train`)")
    case.add_argument("--out", required=True, help="output folder")
    case.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                      help="device for auto-segmentation when no mask is given")
    case.add_argument("--include-identifiers", action="store_true",
                      help="write input paths into result.json (off by default: paths often name the patient)")
    case.set_defaults(func=cmd_case)

    demo = sub.add_parser("demo", help="run a whole case on the embedded synthetic case and demo model")
    demo.add_argument("--out", default="demo-out", help="output folder (default: ./demo-out)")
    demo.set_defaults(func=cmd_demo)
