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
batch goes on. ``OUT/summary.csv`` has one row per case. A case is written into a ``.partial`` folder
and renamed when complete, so an interrupted batch resumes where it stopped.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import shutil
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from . import __version__
from .errors import DelicaiteError, MaskError
from .io.images import VOLUME_SUFFIXES
from .jsonable import json_default

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
SEGMENTATION_FILE = "segmentation.nii.gz"
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
                  device: str = "cpu", progress: Progress | None = None, resume: bool = True) -> list[dict]:
    """Run every case into ``out_dir/<case>/`` and write ``out_dir/summary.csv``; returns its rows.

    ``model_path`` None uses the bundled demo model (simulated cohort; not for clinical use). With
    ``resume`` a case that already has a result.json is skipped. Row ``status``: done, skipped, error.
    """
    cases = list(cases)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if model_path is None:
        from .demo import DEMO_NOTE, demo_model_dir

        model_path = demo_model_dir()
        if any(c.clinical for c in cases):
            _say(progress, f"no model given: using the bundled {DEMO_NOTE}")
    rows = []
    for number, case in enumerate(cases, start=1):
        say = _tagged(progress, f"[case {number}/{len(cases)}] {case.name}: ")
        rows.append(_process_one(case, out / case.name, model_path, device, say, resume))
        say(f"{rows[-1]['status']}" + (f" ({rows[-1]['error']})" if rows[-1]["error"] else ""))
    write_summary(rows, out / SUMMARY_FILE)
    failed = sum(row["status"] == "error" for row in rows)
    _say(progress, f"batch finished: {len(rows) - failed} of {len(rows)} cases done, {failed} failed; "
                   f"summary in {SUMMARY_FILE}")
    return rows


def _say(progress: Progress | None, message: str) -> None:
    (progress or log.info)(message)


def _tagged(progress: Progress | None, tag: str) -> Progress:
    """Progress messages prefixed with ``[case i/n] name:`` (the hub's progress bar reads i/n)."""
    return lambda message: _say(progress, tag + message)


def _process_one(case: CaseInputs, case_out: Path, model_path, device: str, say: Progress, resume: bool) -> dict:
    if resume and (case_out / RESULT_FILE).is_file():
        say("already done, skipped (resume)")
        return _summary_row(case.name, "skipped", _read_result(case_out))
    partial = case_out.with_name(case_out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        if case.problem:
            raise DelicaiteError(case.problem)
        result = _run_case(case, partial, model_path, device, say)
    except Exception as err:  # noqa: BLE001 — one bad case must not stop the batch
        message = str(err) if isinstance(err, DelicaiteError) else f"{type(err).__name__}: {err}"
        message = _relative_paths(message, case)
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(case_out, ignore_errors=True)
        case_out.mkdir(parents=True)
        details = "" if isinstance(err, DelicaiteError) else "\n\n" + _relative_paths(traceback.format_exc(), case)
        (case_out / ERROR_FILE).write_text(message + details + "\n", encoding="utf-8")
        return _summary_row(case.name, "error", {}, error=message)
    shutil.rmtree(case_out, ignore_errors=True)  # an earlier failed or unfinished attempt
    partial.rename(case_out)
    return _summary_row(case.name, "done", result)


def _relative_paths(text: str, case: CaseInputs) -> str:
    """``text`` with the cases folder's absolute path cut off ("HCC_009/ap.nii.gz: ..."): folders above
    the cases often carry names that identify patients, and error.txt and summary.csv travel."""
    root = str(case.folder.resolve().parent)
    return text.replace(root + "/", "").replace(str(case.folder.parent) + "/", "")


def _run_case(case: CaseInputs, out: Path, model_path, device: str, say: Progress) -> dict:
    """One case into ``out``: segmentation (given or automatic), slices and, with covariates, the full case."""
    from .io import label_volumes_ml, load_case

    out.mkdir(parents=True)
    say("loading " + ("both phases" if case.vp else "the CT (single phase)"))
    loaded = load_case(case.ap, case.vp or case.ap, case.mask)
    if loaded.label is None:
        from .segmentation.backends import segment_ct

        say("no mask: auto-segmenting liver and tumour (review it before clinical use)")
        loaded.label = segment_ct(loaded.ap, device=device, progress=say)
        mask_source = "automatic (DELICAITE segmentation network, not reviewed)"
    else:
        mask_source = "given"
    sitk.WriteImage(loaded.label, str(out / SEGMENTATION_FILE), True)
    volumes = {k: float(v) for k, v in label_volumes_ml(loaded.label).items()}
    extra = {"mask_source": mask_source, "volumes_ml": volumes, "segmentation_file": SEGMENTATION_FILE,
             "single_phase": case.vp is None}
    if case.clinical:
        from .workflow import run_case

        clinical = _read_clinical(case.clinical)
        say("running the whole case (slices, radiomics, interaction model)")
        result = run_case(loaded.ap, loaded.vp, loaded.label, clinical, model_path, out, device=device,
                          progress=say)
        result.update(kind="full_case", alignment=loaded.alignment, **extra)
    else:
        say("no clinical.json: writing the segmentation and the three slices only")
        result = {"delicaite_version": __version__,
                  "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "kind": "slices_only", "slices": _slices_or_warning(loaded.label, extra),
                  "alignment": loaded.alignment, **extra}
    (out / RESULT_FILE).write_text(json.dumps(result, indent=2, default=json_default), encoding="utf-8")
    return result


def _slices_or_warning(label: sitk.Image, extra: dict) -> list[dict]:
    """The three largest tumour slices; none (with a warning in the result) when there is no tumour."""
    from .slices import largest_tumour_slices

    try:
        return [{"index": s.index, "area_mm2": s.area_mm2} for s in largest_tumour_slices(label)]
    except MaskError as err:
        extra["warning"] = str(err)
        return []


def _read_clinical(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DelicaiteError(f"{path.name} is not valid JSON (line {err.lineno}: {err.msg})") from None


def _read_result(case_out: Path) -> dict:
    try:
        return json.loads((case_out / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _summary_row(name: str, status: str, result: dict, error: str = "") -> dict:
    risk = result.get("risk", {})
    volumes = result.get("volumes_ml", {})
    return {
        "case": name, "status": status, "kind": result.get("kind", ""),
        "recommendation": result.get("recommendation", ""),
        "h": result.get("interaction_score", {}).get("h", ""),
        "p_pd_tace": risk.get("p_pd_tace", ""), "p_pd_haic": risk.get("p_pd_haic", ""),
        "slices": " ".join(str(s["index"]) for s in result.get("slices", [])),
        "liver_ml": volumes.get("liver_ml", ""), "tumour_ml": volumes.get("tumour_ml", ""),
        "mask_source": result.get("mask_source", ""), "error": error,
    }


def write_summary(rows: list[dict], path: str | Path) -> None:
    """One CSV row per case (columns SUMMARY_COLUMNS)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
