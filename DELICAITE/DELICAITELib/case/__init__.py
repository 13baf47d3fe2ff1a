"""One patient's case through the one engine every door uses.

prepare.py   stage 1: phases and mask on the AP grid, auto-segmentation, the three largest tumour slices
engine.py    CaseEngine: prepare → features (a feature spec) → predict (a model bundle); CaseRun
result.py    CaseResult: the typed result and result.json
outputs.py   the case's files, written as a set
report.py    report.png and report.html
"""

from .engine import CaseEngine, CaseRun
from .outputs import REPORT_FILES, RESULT_FILE, SEGMENTATION_FILE, write_case_outputs
from .prepare import AUTOMATIC_MASK, GIVEN_MASK, PreparedCase, prepare_case
from .result import FULL_CASE, SLICES_ONLY, CaseResult

__all__ = ["AUTOMATIC_MASK", "CaseEngine", "CaseResult", "CaseRun", "FULL_CASE", "GIVEN_MASK", "PreparedCase",
           "REPORT_FILES", "RESULT_FILE", "SEGMENTATION_FILE", "SLICES_ONLY", "prepare_case", "run_case",
           "write_case_outputs"]


def run_case(ap, vp, mask, clinical, model_path, out_dir, *, device: str = "cpu", include_identifiers: bool = False,
             progress=None) -> CaseResult:
    """One case with the model folder at ``model_path``, its files written into ``out_dir``."""
    engine = CaseEngine.for_model(model_path, device=device)
    run = engine.run(ap, vp, mask, clinical, progress, include_identifiers=include_identifiers)
    write_case_outputs(run, out_dir, engine.bundle.training_h)
    return run.result
