"""A case's files, written as a set: result.json, features.json, segmentation.nii.gz, report.png/.html.

Everything is written into a staging folder beside the outputs and moved into place only once the
whole set is complete, result.json last (a batch takes a case with result.json as done). A failure on
the way leaves the previous outputs as they were.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..storage import write_image_atomically, write_json_atomically
from .engine import CaseRun

RESULT_FILE, FEATURES_FILE, SEGMENTATION_FILE = "result.json", "features.json", "segmentation.nii.gz"
REPORT_PNG, REPORT_HTML = "report.png", "report.html"
REPORT_FILES = (RESULT_FILE, REPORT_PNG, REPORT_HTML)
ALL_FILES = (RESULT_FILE, FEATURES_FILE, SEGMENTATION_FILE, REPORT_PNG, REPORT_HTML)


def write_case_outputs(run: CaseRun, out_dir, training_h=None) -> list[Path]:
    """Write the case's files into ``out_dir`` (created if need be); returns their paths, result.json last.

    A slices-only case gets result.json and the segmentation; a full case also features.json and the
    report (``training_h``: the training patients' scores, drawn behind this patient's)."""
    from .report import write_html, write_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        case = run.prepared.case
        run.result.segmentation_file = SEGMENTATION_FILE
        write_image_atomically(staging / SEGMENTATION_FILE, case.label)
        names = [SEGMENTATION_FILE]
        if run.result.prediction is not None:
            write_json_atomically(staging / FEATURES_FILE, {"clinical": run.clinical, "image_features": run.features.values})
            png = write_png(staging / REPORT_PNG, run.result, {"AP": case.ap, "VP": case.vp}, case.label, training_h)
            write_html(staging / REPORT_HTML, run.result, png)
            names += [FEATURES_FILE, REPORT_PNG, REPORT_HTML]
        write_json_atomically(staging / RESULT_FILE, run.result.to_json(), indent=2)
        names.append(RESULT_FILE)
        for name in names:
            os.replace(staging / name, out / name)
        for name in set(ALL_FILES) - set(names):  # a slices-only rerun leaves no report of the case before it
            (out / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / name for name in names]
