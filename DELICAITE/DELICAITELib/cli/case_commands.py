"""`delicaite case` and `delicaite demo`: one patient from CT files to a recommendation report."""

from __future__ import annotations

from pathlib import Path

from .common import progress, read_json_file


def _print_result(result: dict, out: Path) -> None:
    score = result["interaction_score"]
    print(f"recommendation: {result['recommendation']}")
    print(f"P(PD | TACE) = {result['risk']['p_pd_tace']:.3f}   P(PD | HAIC) = {result['risk']['p_pd_haic']:.3f}")
    print(f"interaction score h = {score['h']:+.3f}  "
          f"[{score['interval_level']:.0%} interval {score['lower']:+.3f}, {score['upper']:+.3f}]  cutoff {result['cutoff']}")
    print("largest tumour slices: " + ", ".join(f"{s['index']} ({s['area_mm2']:.0f} mm²)" for s in result["slices"]))
    print(f"wrote {out / 'result.json'}, {out / 'report.png'}, {out / 'report.html'}")


def cmd_case(args) -> None:
    from ..workflow import run_case

    out = Path(args.out)
    result = run_case(args.ap, args.vp, args.mask, read_json_file(args.clinical, "clinical"), args.model, out,
                      radiomics_params=args.radiomics_params, include_identifiers=args.include_identifiers,
                      device=args.device, progress=progress)
    _print_result(result, out)


def cmd_demo(args) -> None:
    from ..demo import DEMO_NOTE, run_demo

    out = Path(args.out)
    print("DELICAITE demo: a synthetic two-phase liver CT made by DELICAITE (no patient), a made-up clinical "
          f"record, and the bundled {DEMO_NOTE}.", flush=True)
    result = run_demo(out, progress=progress)
    _print_result(result, out)


def add_parsers(sub) -> None:
    case = sub.add_parser("case", help="run one patient's case from CT files to a recommendation report")
    case.add_argument("--ap", required=True, help="arterial phase: DICOM series folder, NIfTI or NRRD")
    case.add_argument("--vp", required=True, help="portal-venous phase (same formats; resampled onto AP if needed)")
    case.add_argument("--mask", help="label map (1 liver, 2 tumour): NIfTI/NRRD or 3D-IRCADb folder; "
                                     "without it the AP phase is auto-segmented (review the result!)")
    case.add_argument("--clinical", required=True, help="JSON file of clinical covariates (units as in the schema)")
    case.add_argument("--model", required=True, help="model folder (model.json + weights.npz)")
    case.add_argument("--out", required=True, help="output folder")
    case.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                      help="device for auto-segmentation when no mask is given")
    case.add_argument("--radiomics-params", help="pyradiomics YAML (default: the bundled, versioned settings)")
    case.add_argument("--include-identifiers", action="store_true",
                      help="write input paths into result.json (off by default: paths often name the patient)")
    case.set_defaults(func=cmd_case)

    demo = sub.add_parser("demo", help="run a whole case on the embedded synthetic case and demo model")
    demo.add_argument("--out", default="demo-out", help="output folder (default: ./demo-out)")
    demo.set_defaults(func=cmd_demo)
