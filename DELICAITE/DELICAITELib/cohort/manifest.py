"""Checking a cohort's manifest.csv before anything is trained or extracted from it.

One row per patient: patient_id, centre, ap, vp, mask, therapy, pd, os_months, os_event. Image paths
are relative to the manifest's folder or absolute; a row without images is a covariates-only patient.
Every problem is collected, and one DelicaiteError lists them by CSV line (the header is line 1) and
column, each saying what to fix. An empty ``pd`` means the response is unknown: allowed and reported
(training leaves such patients out); the same goes for an empty ``os_months`` together with ``os_event``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ..errors import DelicaiteError

COLUMNS = ("patient_id", "centre", "ap", "vp", "mask", "therapy", "pd", "os_months", "os_event")
IMAGE_COLUMNS = ("ap", "vp", "mask")
THERAPIES = ("TACE", "HAIC")
MAX_SHOWN = 10
HEADER_LINES = 1  # data row i (0-based) is CSV line i + 2


class ManifestError(DelicaiteError):
    """A manifest (or covariates.csv beside it) with problems; ``problems`` lists every one."""

    def __init__(self, message: str, problems: list[str]):
        super().__init__(message)
        self.problems = problems


def line_of(row_position: int) -> int:
    """CSV line of a data row (0-based position; the header is line 1)."""
    return row_position + HEADER_LINES + 1


def _text(value) -> str:
    """A cell as stripped text; missing (None, NaN) is ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _flag(text: str) -> int | None:
    """0/1 written as 0, 1, 0.0 or 1.0; None for anything else."""
    value = _number(text)
    return int(value) if value in (0.0, 1.0) else None


def _filename_problem(patient_id: str) -> str | None:
    """Case files are named after the id (cases/<id>.json), so it must be a plain file name."""
    if patient_id.startswith("."):
        return "starts with '.'"
    for bad in ("/", "\\", "\0"):
        if bad in patient_id:
            return f"contains {bad!r}"
    return None


def resolve_image_path(value: str, base_dir: Path) -> Path:
    """An image path from the manifest: absolute as given, relative to the manifest's folder otherwise."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def read_manifest(cohort_dir, require_images: bool = False, **options) -> pd.DataFrame:
    """Read ``cohort_dir/manifest.csv`` as text and return it checked and normalised (validate_manifest)."""
    path = Path(cohort_dir) / "manifest.csv"
    if not path.is_file():
        raise DelicaiteError(f"manifest not found: {path} (a cohort folder holds manifest.csv with the columns "
                             f"{', '.join(COLUMNS)})")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DelicaiteError(f"{path} is empty: write a header line ({','.join(COLUMNS)}) and one row per "
                             "patient") from None
    except pd.errors.ParserError as err:
        raise DelicaiteError(f"{path} is not a readable CSV ({err}); check the commas and quotes on that "
                             "line") from None
    return validate_manifest(raw, path.parent, require_images, **options)


def validate_manifest(df: pd.DataFrame, base_dir, require_images: bool = False, *,
                      covariate_ids: Iterable | None = None, check_image_paths: bool = True) -> pd.DataFrame:
    """Check a manifest table and return it normalised; raise ManifestError listing every problem.

    ``base_dir``: the manifest's folder (relative image paths start there). ``require_images``: every row
    must have both phases. ``covariate_ids``: the patient_id column of covariates.csv in file order
    (checked one-to-one against the manifest). ``check_image_paths`` False skips the existence check
    (work that needs no images, e.g. training from a features table on another machine).

    Returned columns: patient_id, centre (str); ap, vp, mask (absolute path strings, None when empty);
    therapy ("TACE"/"HAIC"); pd, os_event (int, or float with NaN where unknown); os_months (float).
    ``attrs["notes"]`` holds the allowed-but-reported findings (unknown pd or survival).
    """
    base = Path(base_dir)
    problems: list[str] = []
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        header = ",".join(str(c) for c in df.columns)
        separator = next((f" (its header is separated by {name}, not commas: save it as comma-separated CSV)"
                          for mark, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars"))
                          if len(df.columns) == 1 and mark in header), "")
        problems.append(f"line 1 (header): column(s) {', '.join(missing)} missing{separator}; a manifest has the "
                        f"columns {', '.join(COLUMNS)} (image columns may be left empty)")
        raise problems_error(problems)
    rows = {c: [_text(v) for v in df[c].tolist()] for c in COLUMNS}
    out = {c: [] for c in COLUMNS}
    first_line: dict[str, int] = {}
    no_pd, no_os = [], []
    for i in range(len(df)):
        line = line_of(i)
        cell = {c: rows[c][i] for c in COLUMNS}

        pid = cell["patient_id"]
        if not pid:
            problems.append(f"line {line}, column patient_id: empty; give every row a unique patient id")
        elif pid in first_line:
            problems.append(f"line {line}, column patient_id: id {pid!r} is also on line {first_line[pid]}; "
                            "give each patient one row with a unique id")
        else:
            first_line[pid] = line
            bad = _filename_problem(pid)
            if bad:
                problems.append(f"line {line}, column patient_id: id {pid!r} {bad}; case files are named after "
                                "the id, so use letters, digits, '-', '_' and '.'")
        out["patient_id"].append(pid)

        if not cell["centre"]:
            problems.append(f"line {line}, column centre: empty; name the centre (one name for a "
                            "single-centre cohort)")
        out["centre"].append(cell["centre"])

        therapy = cell["therapy"].upper()
        if therapy not in THERAPIES:
            shown = repr(cell["therapy"]) if cell["therapy"] else "empty"
            problems.append(f"line {line}, column therapy: {shown} is not a therapy code; write "
                            f"{' or '.join(THERAPIES)}")
        out["therapy"].append(therapy)

        pd_flag = _flag(cell["pd"])
        if not cell["pd"]:
            no_pd.append(line)
        elif pd_flag is None:
            problems.append(f"line {line}, column pd: {cell['pd']!r} is not 0/1; write 1 for progressive "
                            "disease, 0 for disease control, or leave it empty when unknown")
        out["pd"].append(pd_flag)

        months, event = _survival(cell, line, problems, no_os)
        out["os_months"].append(months)
        out["os_event"].append(event)

        _images(cell, line, base, require_images, check_image_paths, problems, out)

    if covariate_ids is not None:
        _match_covariates(list(covariate_ids), first_line, problems)
    if problems:
        raise problems_error(problems)
    result = pd.DataFrame(out, columns=list(COLUMNS))
    for name in ("pd", "os_event"):  # int when complete, float with NaN where unknown
        if result[name].notna().all():
            result[name] = result[name].astype(int)
        else:
            result[name] = result[name].astype(float)
    result["os_months"] = result["os_months"].astype(float)
    result.attrs["notes"] = _notes(no_pd, no_os)
    return result


def _survival(cell: dict, line: int, problems: list[str], no_os: list[int]) -> tuple[float | None, int | None]:
    months_text, event_text = cell["os_months"], cell["os_event"]
    if not months_text and not event_text:
        no_os.append(line)
        return None, None
    months = _number(months_text) if months_text else None
    if not months_text:
        problems.append(f"line {line}, column os_months: empty while os_event is given; give the overall "
                        "survival in months (or leave both empty when unknown)")
    elif months is None:
        problems.append(f"line {line}, column os_months: {months_text!r} is not a number; give the overall "
                        "survival in months, e.g. 14.2")
    elif months < 0:
        problems.append(f"line {line}, column os_months: {months_text} is negative; give the months from the "
                        "start of therapy to death or last follow-up (>= 0)")
        months = None
    event = _flag(event_text)
    if not event_text:
        problems.append(f"line {line}, column os_event: empty while os_months is given; write 1 (died) or "
                        "0 (alive at last follow-up, censored)")
    elif event is None:
        problems.append(f"line {line}, column os_event: {event_text!r} is not 0/1; write 1 (died) or 0 "
                        "(alive at last follow-up, censored)")
    return months, event


def _images(cell: dict, line: int, base: Path, require_images: bool, check_paths: bool,
            problems: list[str], out: dict) -> None:
    """Both phases or none (mask optional); paths that exist (a file or a DICOM folder)."""
    has_any = any(cell[c] for c in IMAGE_COLUMNS)
    for phase, other in (("ap", "vp"), ("vp", "ap")):
        if not cell[phase] and (cell[other] or require_images):
            why = f"{other} is given" if cell[other] else "this cohort needs images for every patient"
            problems.append(f"line {line}, column {phase}: empty but {why}; give both phases (for single-phase "
                            "data give the same series as ap and vp)")
    if cell["mask"] and not (cell["ap"] or cell["vp"]):
        problems.append(f"line {line}, column mask: a mask without images; give the ap and vp phases too")
    for column in IMAGE_COLUMNS:
        if not cell[column]:
            out[column].append(None)
            continue
        path = resolve_image_path(cell[column], base)
        if check_paths and has_any and not path.exists():
            problems.append(f"line {line}, column {column}: {cell[column]} not found (relative paths start in "
                            f"the manifest's folder {base}); fix the path or copy the file there")
        out[column].append(str(path))


def _match_covariates(covariate_ids: list, manifest_lines: dict[str, int], problems: list[str]) -> None:
    """covariates.csv must hold exactly the manifest's patients, one row each."""
    seen: dict[str, int] = {}
    for i, raw in enumerate(covariate_ids):
        pid, line = _text(raw), line_of(i)
        if pid in seen:
            problems.append(f"covariates.csv line {line}, column patient_id: id {pid!r} is also on line "
                            f"{seen[pid]}; give each patient one row")
            continue
        seen[pid] = line
        if pid not in manifest_lines:
            problems.append(f"covariates.csv line {line}, column patient_id: id {pid!r} is not in manifest.csv; "
                            "add the patient to the manifest or remove the row")
    for pid, line in manifest_lines.items():
        if pid not in seen:
            problems.append(f"line {line}, column patient_id: id {pid!r} has no row in covariates.csv; add "
                            "its covariates (empty cells for unknown values)")


def _notes(no_pd: list[int], no_os: list[int]) -> list[str]:
    notes = []
    if no_pd:
        notes.append(f"{len(no_pd)} patient(s) with an empty pd (response unknown; training leaves them out): "
                     f"line(s) {_lines(no_pd)}")
    if no_os:
        notes.append(f"{len(no_os)} patient(s) with empty os_months and os_event (survival unknown; survival "
                     f"analyses leave them out): line(s) {_lines(no_os)}")
    return notes


def _lines(lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:MAX_SHOWN])
    return shown + (f" and {len(lines) - MAX_SHOWN} more" if len(lines) > MAX_SHOWN else "")


def problems_error(problems: list[str], source: str = "manifest.csv") -> ManifestError:
    """One error for all problems: the count, the first MAX_SHOWN, and how many more."""
    head = f"{source} has {len(problems)} problem{'s' if len(problems) > 1 else ''}"
    shown = "; ".join(problems[:MAX_SHOWN])
    more = f" (+{len(problems) - MAX_SHOWN} more)" if len(problems) > MAX_SHOWN else ""
    return ManifestError(f"{head}: {shown}{more}", problems)
