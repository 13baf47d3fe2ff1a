"""`delicaite batch`: every case folder under CASES_DIR, one result per case and a summary CSV."""

from __future__ import annotations

from ..errors import DelicaiteError
from .common import progress


def cmd_batch(args) -> None:
    from ..batch import find_cases, outcome, process_cases
    from ..storage import check_output_folder, output_lock

    out = check_output_folder(args.out)
    cases = find_cases(args.cases_dir, exclude=[out])
    with output_lock(out):
        rows = process_cases(cases, out, model_path=args.model, device=args.device, progress=progress,
                             resume=not args.no_resume)
    for row in rows:
        print(f"{row['case']}\t{row['status']}\t{outcome(row)}")
    failed = [row["case"] for row in rows if row["status"] == "error"]
    if failed:
        raise DelicaiteError(f"{len(failed)} of {len(rows)} cases failed (see error.txt in their output folders)")


def add_parsers(sub) -> None:
    batch = sub.add_parser(
        "batch", help="run every case folder in CASES_DIR (segment, slices, and with clinical.json the full case)")
    batch.add_argument("cases_dir", metavar="CASES_DIR",
                       help="one subfolder per case: ap (DICOM folder or ap.nii.gz/.nrrd/.mha) or a single CT, "
                            "optional vp, mask.* or MASKS_DICOM/, clinical.json")
    batch.add_argument("--out", required=True, help="output folder: OUT/<case>/result.json and OUT/summary.csv")
    batch.add_argument("--model", help="model folder for cases with clinical.json (default: the bundled demo model)")
    batch.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                       help="device for auto-segmentation of cases without a mask (default: cpu)")
    batch.add_argument("--no-resume", action="store_true", help="redo cases that already have a result.json")
    batch.set_defaults(func=cmd_batch)
