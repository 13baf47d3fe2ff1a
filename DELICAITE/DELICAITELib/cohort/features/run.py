"""The whole cohort: which cases are left, who runs them (here, a process pool, a Dask cluster), the tables.

OUT/cases/<patient_id>.json   one per finished case (features, slices, mask source, versions)
OUT/cases/<patient_id>_auto_segmentation.nii.gz   the label map of a case without a mask, for review
OUT/failures.csv              patient_id, error: the cases that failed in the latest run (retried next run)
OUT/features.csv              patient_id + feature columns, in manifest order, from the case files
OUT/feature_spec.json         the feature spec the table was made with (`cohort train` puts it in the model)

A case whose file exists (made with the same feature spec) is not done again, so a run that was
killed resumes where it stopped; delete a case file to redo that case.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ...errors import DelicaiteError
from ...features.spec import SPEC_FILE, FeatureSpec
from ...storage import remove_stale_temporaries, write_csv_atomically
from ..manifest import line_of, read_manifest
from .case_file import case_path, extract_case_features, is_finished, read_case_file, run_fingerprint

log = logging.getLogger(__name__)
CASES_DIR, FEATURES_FILE, FAILURES_FILE = "cases", "features.csv", "failures.csv"


@dataclass
class FeatureRun:
    """What a run left: the features table, this run's failures, and counts (done, resumed, failed)."""

    out_dir: Path
    features: pd.DataFrame
    failures: pd.DataFrame
    done: int
    resumed: int
    failed: int


def extract_cohort_features(cohort_dir, out_dir, *, workers: int = 1, scheduler: str | None = None,
                            device: str = "cpu", radiomics_params=None, deep_encoder=None, save_crops: bool = False,
                            radiomics_engine: str = "auto",
                            deep_cnn=None, progress_bar: bool = False,
                            say: Callable[[str], None] | None = None) -> FeatureRun:
    """Extract every manifest row with images into ``out_dir`` (see the module docstring).

    ``workers`` > 1 runs cases in that many spawned processes (each one case at a time, its threads
    limited to its share of the CPUs); ``scheduler`` (a Dask scheduler address) sends them to a
    ``distributed`` cluster instead, whose workers must see the same files. ``say`` gets progress
    messages without patient identifiers (default: the log).
    """
    say = say or log.info
    if workers < 1:
        raise DelicaiteError(f"--workers must be at least 1, got {workers}")
    cohort = Path(cohort_dir)
    manifest = read_manifest(cohort)
    with_images = manifest[manifest["ap"].notna()]
    if with_images.empty:
        raise DelicaiteError(f"cohort {cohort} has covariates only: nothing to extract (manifest.csv gives no ap/vp "
                             "images; add their paths to extract radiomics)")
    out = Path(out_dir)
    cases_dir = out / CASES_DIR
    cases_dir.mkdir(parents=True, exist_ok=True)
    if removed := remove_stale_temporaries(cases_dir):
        say(f"removed {removed} unfinished temporary file(s) of an interrupted run")
    spec = FeatureSpec.from_options(radiomics_params, deep_encoder, deep_cnn, radiomics_engine=radiomics_engine)
    spec.check()  # a bad encoder or CNN file fails here, once, rather than in every case
    fingerprint = run_fingerprint(spec, save_crops)
    todo = [row for row in with_images.itertuples() if not is_finished(case_path(cases_dir, row.patient_id),
                                                                         fingerprint)]
    resumed = len(with_images) - len(todo)
    where = f"the Dask cluster at {scheduler}" if scheduler else (
        f"{workers} worker processes" if workers > 1 else "this process")
    say(f"{len(with_images)} case(s) with images ({len(manifest) - len(with_images)} covariates-only row(s) "
        f"skipped): {resumed} already done, {len(todo)} to extract in {where}")
    tasks = [dict(patient_id=row.patient_id, ap=row.ap, vp=row.vp, mask=row.mask, cases_dir=str(cases_dir),
                  spec=spec, fingerprint=fingerprint, device=device, save_crops=save_crops, base_dir=str(cohort.resolve()))
             for row in todo]
    lines = {row.patient_id: line_of(row.Index) for row in todo}
    failures: dict[str, str] = {}
    counts = {"done": 0, "skipped": 0, "failed": 0}
    write_failures(out / FAILURES_FILE, failures)  # clears the list of an earlier run
    bar = _progress_bar(len(with_images), resumed, progress_bar)
    try:
        for result in _results(tasks, workers, scheduler):
            counts[result["status"]] += 1
            if result["status"] == "failed":
                failures[result["patient_id"]] = result["error"]
                write_failures(out / FAILURES_FILE, failures)
                say(f"case on manifest line {lines[result['patient_id']]} failed: {result['error']}")
            bar.update(1)
    finally:
        bar.close()
    features = assemble_features(with_images["patient_id"], cases_dir, say)
    write_csv_atomically(features, out / FEATURES_FILE)
    spec.save(out / SPEC_FILE)
    say(f"{len(features)} of {len(with_images)} case(s) in {FEATURES_FILE} ({counts['done']} extracted now, "
        f"{resumed + counts['skipped']} resumed, {len(failures)} failed)")
    return FeatureRun(out, features, _failures_frame(failures), counts["done"], resumed + counts["skipped"],
                      len(failures))


def _progress_bar(total: int, initial: int, enabled: bool):
    import sys

    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="case", desc="cohort features", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)


def _results(tasks: list[dict], workers: int, scheduler: str | None) -> Iterator[dict]:
    if not tasks:
        return iter(())
    if scheduler:
        return _run_dask(tasks, scheduler)
    if workers > 1:
        return _run_pool(tasks, workers)
    return (extract_case_features(**task) for task in tasks)


def _run_pool(tasks: list[dict], workers: int) -> Iterator[dict]:
    """Spawned processes (no fork: torch and SimpleITK threads do not survive a fork), one case each at
    a time, each limited to its share of the CPUs."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(extract_case_features, **task, threads=threads): task["patient_id"]
                   for task in tasks}
        for future in as_completed(futures):
            yield _result_or_failure(future, futures[future], "a worker process died (out of memory?)")


def _run_dask(tasks: list[dict], address: str) -> Iterator[dict]:
    """The same per-case function on a dask.distributed cluster; results gathered as they complete."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise DelicaiteError("--scheduler needs dask.distributed: pip install 'delicaite[cluster]' "
                             "(or dask[distributed])") from None
    try:
        client = Client(address, set_as_default=False, timeout="20s")
    except (OSError, TimeoutError) as err:
        raise DelicaiteError(f"cannot reach the Dask scheduler at {address} ({err}); start it (dask scheduler) "
                             "or check the address") from None
    with client:
        futures = {client.submit(extract_case_features, **task, pure=False): task["patient_id"] for task in tasks}
        for future in dask_completed(futures, loop=client.loop):
            yield _result_or_failure(future, futures[future], "the Dask task failed")


def _result_or_failure(future, patient_id: str, what: str) -> dict:
    try:
        return future.result()
    except BrokenProcessPool:
        return {"patient_id": patient_id, "status": "failed", "error": what, "seconds": 0.0}
    except Exception as err:  # noqa: BLE001 — a lost worker fails its case, not the cohort
        return {"patient_id": patient_id, "status": "failed", "error": f"{what}: {type(err).__name__}: {err}",
                "seconds": 0.0}


def assemble_features(patient_ids, cases_dir, say: Callable[[str], None] | None = None) -> pd.DataFrame:
    """patient_id + feature columns from the finished case files, in the given (manifest) order."""
    rows, columns = [], {}
    for pid in patient_ids:
        record = read_case_file(case_path(cases_dir, pid))
        if record is None:
            continue
        rows.append({"patient_id": pid, **record["features"]})
        columns.update(dict.fromkeys(record["features"]))
    if rows and any(len(row) != len(columns) + 1 for row in rows) and say:
        say("case files hold different feature sets (different radiomics settings?): missing values left empty")
    return pd.DataFrame(rows, columns=["patient_id", *columns])


def _failures_frame(failures: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": list(failures), "error": list(failures.values())},
                        columns=["patient_id", "error"])


def write_failures(path, failures: dict[str, str]) -> None:
    write_csv_atomically(_failures_frame(failures), path)
