"""Many cases in one run: find the case folders, then segment, pick slices and (with covariates) recommend.

A cases folder holds one subfolder per case::

    CASES/
      case-A/  ap/ (DICOM series) | ap.nii.gz | ap.nrrd | ap.mha      arterial phase (or one CT, see below)
               vp/ | vp.nii.gz ...                                   portal-venous phase (optional)
               mask.nii.gz | mask.nrrd ... | MASKS_DICOM/            label map 0/1/2 or 3D-IRCADb masks (optional)
               clinical.json                                         covariates (optional)

Without files named ``ap``/``vp`` a case with exactly one CT (a DICOM folder, ``PATIENT_DICOM`` of a
3D-IRCADb patient, or one volume file) is used as a single-phase case. Without a mask the AP phase is
auto-segmented; without ``clinical.json`` only the segmentation and the three slices are written.

Each case's outputs go to ``OUT/<case>/`` (``result.json``, ``segmentation.nii.gz`` and, with
covariates, ``features.json`` and the report); a case that fails gets ``OUT/<case>/error.txt`` and the
batch goes on. ``OUT/summary.csv`` has one row per case. Every case runs through the one case engine
(case/engine.py) with the model loaded and checked once, before any output is touched; a case's files
are written as a set (case/outputs.py), so an interrupted batch resumes where it stopped and a case
that fails on a rerun keeps its earlier result beside the error.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .case import RESULT_FILE, CaseEngine, CaseResult, write_case_outputs
from .errors import DelicaiteError
from .io.images import VOLUME_SUFFIXES
from .jsonable import read_json
from .progress import ProgressCallback, Reporter, reporter
from .storage import write_csv_atomically, write_text_atomically

ERROR_FILE = "error.txt"
SUMMARY_FILE = "summary.csv"
CLINICAL_FILE = "clinical.json"
IRCADB_CT, IRCADB_MASKS = "PATIENT_DICOM", "MASKS_DICOM"
SUMMARY_COLUMNS = ("case", "status", "kind", "recommendation", "h", "p_pd_tace", "p_pd_haic", "slices",
                   "liver_ml", "tumour_ml", "mask_source", "error")


@dataclass
class CaseInputs:
    """One case folder: its inputs, or ``problem`` saying what is missing (the batch reports it)."""

    name: str
    folder: Path
    ap: Path | None = None
    vp: Path | None = None
    mask: Path | None = None
    clinical: Path | None = None
    problem: str | None = None


def _is_volume_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(VOLUME_SUFFIXES)


def _stem(path: Path) -> str:
    """Lower-case name without a volume suffix: ``AP.nii.gz`` → ``ap``."""
    name = path.name.lower()
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _named(entries: list[Path], stem: str) -> list[Path]:
    """Entries called ``stem``: a folder of that name or a volume file ``stem.<suffix>``."""
    return [p for p in entries if _stem(p) == stem and (p.is_dir() or _is_volume_file(p))]


def describe_case(folder: Path) -> CaseInputs:
    """Work out a case folder's inputs; never raises for a bad case (``problem`` says what is wrong)."""
    case = CaseInputs(name=folder.name, folder=folder)
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    problems = []
    for role in ("ap", "vp", "mask"):
        found = _named(entries, role)
        if len(found) > 1:
            problems.append(f"several {role} inputs ({', '.join(p.name for p in found)}); keep one")
        elif found:
            setattr(case, role, found[0])
    if case.mask is None and (folder / IRCADB_MASKS).is_dir():
        case.mask = folder / IRCADB_MASKS
    if (folder / CLINICAL_FILE).is_file():
        case.clinical = folder / CLINICAL_FILE
    if case.ap is None and case.vp is None and not problems:
        case.ap = _single_ct(folder, entries, problems)
    elif case.ap is None and not problems:
        problems.append("a vp phase but no ap phase: add ap/ (DICOM folder) or ap.nii.gz/.nrrd/.mha")
    if problems:
        case.problem = f"case {folder.name}: " + "; ".join(problems)
    return case


def _single_ct(folder: Path, entries: list[Path], problems: list[str]) -> Path | None:
    """The one CT of a single-phase case (PATIENT_DICOM of a 3D-IRCADb folder wins), else a problem."""
    if (folder / IRCADB_CT).is_dir():
        return folder / IRCADB_CT
    candidates = [p for p in entries if (p.is_dir() and p.name != IRCADB_MASKS) or
                  (_is_volume_file(p) and _stem(p) not in ("mask", "label", "segmentation"))]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        found = ", ".join(p.name for p in entries) or "nothing"
        problems.append(
            "no CT found: expected ap/ (a DICOM series folder) or ap.nii.gz/.nrrd/.mha (optional vp.*, "
            f"mask.* or MASKS_DICOM/, clinical.json); found {found}"
        )
    else:
        problems.append(
            f"cannot tell the arterial phase among {', '.join(p.name for p in candidates)}: "
            "name it ap (and the portal-venous phase vp)"
        )
    return None


def find_cases(folder: str | Path, exclude: Iterable[str | Path] = ()) -> list[CaseInputs]:
    """Every subfolder of ``folder`` as a case, sorted by name (hidden folders and ``exclude`` skipped).

    A case with missing or ambiguous inputs is returned with ``problem`` set, so the batch can report
    it and go on. Raises DelicaiteError when ``folder`` is not a folder or holds no subfolder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DelicaiteError(f"cases folder not found: {folder}")
    skip = {Path(p).resolve() for p in exclude}
    subfolders = [p for p in sorted(folder.iterdir())
                  if p.is_dir() and not p.name.startswith(".") and p.resolve() not in skip]
    if not subfolders:
        raise DelicaiteError(f"no case folders in {folder}: put each case in its own subfolder "
                             "(ap/ or ap.nii.gz, optional vp, mask, clinical.json)")
    return [describe_case(p) for p in subfolders]


def process_cases(cases: Iterable[CaseInputs], out_dir: str | Path, model_path: str | Path | None = None,
                  device: str = "cpu", progress: ProgressCallback | Reporter | None = None,
                  resume: bool = True) -> list[dict]:
    """Run every case into ``out_dir/<case>/`` and write ``out_dir/summary.csv``; returns its rows.

    ``model_path`` None uses the bundled demo model (simulated cohort; not for clinical use); it is
    loaded once, and a bad model stops the batch before any output is written. With ``resume`` a case
    with a result.json and no error.txt is skipped. Row ``status``: done, skipped, error. Progress
    events carry the fraction of the whole batch; their messages start with ``[case i/n] name:``.
    """
    cases = list(cases)
    say = reporter(progress)
    engine = CaseEngine(device=device)
    if any(c.clinical for c in cases):
        if model_path is None:
            from .demo import DEMO_NOTE, demo_model_dir

            say(f"no model given: using the bundled {DEMO_NOTE}")
            model_path = demo_model_dir()
        engine = CaseEngine.for_model(model_path, device=device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, case in enumerate(cases, start=1):
        part = say.part((number - 1) / len(cases), number / len(cases), f"[case {number}/{len(cases)}] {case.name}: ")
        rows.append(_process_one(case, out / case.name, engine, part, resume))
        row = rows[-1]
        part(row["status"] + (f" ({row['error']})" if row["error"] else ""), 1.0)
    write_summary(rows, out / SUMMARY_FILE)
    failed = sum(row["status"] == "error" for row in rows)
    say(f"batch finished: {len(rows) - failed} of {len(rows)} cases done, {failed} failed; summary in {SUMMARY_FILE}",
        1.0)
    return rows


def _process_one(case: CaseInputs, case_out: Path, engine: CaseEngine, say: Reporter, resume: bool) -> dict:
    if resume and (case_out / RESULT_FILE).is_file() and not (case_out / ERROR_FILE).exists():
        say("already done, skipped (resume)")
        return summary_row(case.name, "skipped", _read_result(case_out))
    try:
        if case.problem:
            raise DelicaiteError(case.problem)
        result = _run_case(case, case_out, engine, say)
    except Exception as err:  # noqa: BLE001 — one bad case must not stop the batch
        message = str(err) if isinstance(err, DelicaiteError) else f"{type(err).__name__}: {err}"
        message = _relative_paths(message, case)
        details = "" if isinstance(err, DelicaiteError) else "\n\n" + _relative_paths(traceback.format_exc(), case)
        case_out.mkdir(parents=True, exist_ok=True)
        write_text_atomically(case_out / ERROR_FILE, message + details + "\n")
        return summary_row(case.name, "error", None, error=message)
    (case_out / ERROR_FILE).unlink(missing_ok=True)  # an earlier failure of this case is history now
    return summary_row(case.name, "done", result)


def _relative_paths(text: str, case: CaseInputs) -> str:
    """``text`` with the cases folder's absolute path cut off ("HCC_009/ap.nii.gz: ..."): folders above
    the cases often carry names that identify patients, and error.txt and summary.csv travel."""
    from .storage import strip_absolute_paths

    root = str(case.folder.resolve().parent)
    return strip_absolute_paths(text.replace(root + "/", "").replace(str(case.folder.parent) + "/", ""))


def _run_case(case: CaseInputs, out: Path, engine: CaseEngine, say: Reporter) -> CaseResult:
    """One case through the engine: the whole case with covariates, else the segmentation and slices."""
    if case.clinical:
        clinical = read_json(case.clinical, "clinical", case.clinical.name)
        run = engine.run(case.ap, case.vp, case.mask, clinical, progress=say.part(0.0, 0.95))
    else:
        say("no clinical.json: the segmentation and the three slices only")
        run = engine.run_slices_only(case.ap, case.vp, case.mask, progress=say.part(0.0, 0.95))
    write_case_outputs(run, out, None if engine.bundle is None else engine.bundle.training_h)
    return run.result


def _read_result(case_out: Path) -> CaseResult | None:
    try:
        return CaseResult.read(case_out / RESULT_FILE)
    except DelicaiteError:
        return None


def summary_row(name: str, status: str, result: CaseResult | None, error: str = "") -> dict:
    """One row of summary.csv (columns SUMMARY_COLUMNS) from a case's typed result."""
    prediction = None if result is None else result.prediction
    volumes = {} if result is None else result.volumes_ml
    return {
        "case": name, "status": status, "kind": "" if result is None else result.kind,
        "recommendation": "" if prediction is None else prediction.recommendation,
        "h": "" if prediction is None else prediction.score.h,
        "p_pd_tace": "" if prediction is None else prediction.risk.p_pd_tace,
        "p_pd_haic": "" if prediction is None else prediction.risk.p_pd_haic,
        "slices": "" if result is None else " ".join(str(s.index) for s in result.slices),
        "liver_ml": volumes.get("liver_ml", ""), "tumour_ml": volumes.get("tumour_ml", ""),
        "mask_source": "" if result is None else result.mask_source, "error": error,
    }


def outcome(row: dict) -> str:
    """What one summary row says, in a few words: the recommendation, the slices, or the error."""
    if row["recommendation"]:
        return row["recommendation"]
    return f"slices {row['slices']}" if row["slices"] else row["error"]


def write_summary(rows: list[dict], path: str | Path) -> None:
    """One CSV row per case (columns SUMMARY_COLUMNS)."""
    import pandas as pd

    write_csv_atomically(pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)), path)
