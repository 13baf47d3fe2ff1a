"""Run DELICAITE on a folder of cases, in 3D Slicer or in plain Python.

Each subfolder of CASES is a case (see DELICAITELib.batch for the layout):

    CASES/<case>/ap/ or ap.nii.gz   arterial phase (DICOM folder or volume file; or the case's only CT)
                  vp/ or vp.nii.gz  portal-venous phase (optional: single-phase without it)
                  mask.nii.gz or MASKS_DICOM/   label map 0/1/2 (optional: auto-segmented without it)
                  clinical.json     covariates (optional: without it only segmentation + slices)

Outputs: OUT/<case>/result.json (+ segmentation.nii.gz, and with covariates features.json and the
report), OUT/<case>/error.txt for a case that failed, OUT/summary.csv. Cases already done are skipped
(pass --no-resume to redo them).

In plain Python (library only; `pip install -e .` or run from the repository)::

    python examples/batch_cases.py CASES OUT [--model MODEL_DIR] [--device cpu|cuda|auto] [--scenes]

In 3D Slicer, without a window (the DELICAITE module folder on the module paths, dependencies
installed), which also loads each case into the scene and saves OUT/<case>/scene.mrb::

    Slicer --no-main-window --python-script examples/batch_cases.py -- CASES OUT [options]

`--scenes` in plain Python saves OUT/<case>/scene.mrml with the `slicer-core` wheel when it is
installed. Exit status: 0 all cases done, 1 some cases failed (their error.txt says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run from a checkout without installing: the library lives in DELICAITE/DELICAITELib.
# (Slicer's --python-script defines __file__ too; sys.argv[0] is the fallback.)
sys.path.append(str(Path(globals().get("__file__", sys.argv[0])).resolve().parents[1] / "DELICAITE"))


def in_slicer_app() -> bool:
    """True inside the 3D Slicer application (the slicer-core wheel has no `slicer.app`)."""
    try:
        import slicer
    except ImportError:
        return False
    return getattr(slicer, "app", None) is not None


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="DELICAITE on every case folder in CASES.")
    parser.add_argument("cases", help="folder with one subfolder per case")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--model", help="model folder (default: the bundled demo model, not for clinical use)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                        help="device for auto-segmentation (default: cpu)")
    parser.add_argument("--no-resume", action="store_true", help="redo cases that already have a result")
    parser.add_argument("--scenes", action="store_true",
                        help="plain Python: also save a scene per case (needs the slicer-core wheel)")
    # Slicer passes what follows `--python-script FILE`; a leading `--` only separates them.
    return parser.parse_args([a for a in argv if a != "--"])


def save_case_scene(case, case_out: Path, app: bool) -> Path:
    """Load one finished case (AP, VP, its segmentation) into a scene via DELICAITELib.mrml and save it."""
    from DELICAITELib import mrml
    from DELICAITELib.case import SEGMENTATION_FILE, prepare_case

    loaded = prepare_case(case.ap, case.vp, case_out / SEGMENTATION_FILE).case  # the engine's first stage
    label = loaded.label
    if app:
        import slicer

        scene = slicer.mrmlScene
        scene.Clear(0)
    else:
        scene = mrml.new_scene()
    ap_node = mrml.volume_node_from_image(scene, loaded.ap, "AP")
    if case.vp is not None:
        mrml.volume_node_from_image(scene, loaded.vp, "VP")
    mrml.segmentation_node_from_label(scene, label, ap_node, "Segmentation")
    if app:
        path = case_out / "scene.mrb"
        if not slicer.util.saveScene(str(path)):
            raise RuntimeError(f"could not save {path}")
        return path
    return mrml.save_scene(scene, case_out / "scene" / "scene.mrml")


def main(argv: list[str]) -> int:
    from DELICAITELib.batch import RESULT_FILE, find_cases, outcome, process_cases
    from DELICAITELib.errors import DelicaiteError

    args = parse_args(argv)
    app = in_slicer_app()
    try:
        cases = find_cases(args.cases, exclude=[args.out])
    except DelicaiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = process_cases(cases, args.out, model_path=args.model, device=args.device, resume=not args.no_resume,
                         progress=lambda event: print(event.message, file=sys.stderr, flush=True))
    if app or args.scenes:
        for case, row in zip(cases, rows):
            case_out = Path(args.out) / case.name
            if row["status"] == "done" and (case_out / RESULT_FILE).is_file():
                print(f"{case.name}: scene saved as {save_case_scene(case, case_out, app).name}", file=sys.stderr)
    for row in rows:
        print(f"{row['case']}\t{row['status']}\t{outcome(row)}")
    return 1 if any(row["status"] == "error" for row in rows) else 0


if __name__ == "__main__":
    status = main(sys.argv[1:])
    if in_slicer_app():
        import slicer

        slicer.util.exit(status)  # --no-main-window keeps Slicer running otherwise
    else:
        sys.exit(status)
