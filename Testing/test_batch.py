"""Batch processing: case discovery, examples/batch_cases.py on real CT, resume, broken cases, `batch` CLI.

The real cases folder is made of symlinks into ../shared/data (read in place, never copied):
IRCADb-17 (CT + MASKS_DICOM + the demo clinical record → full case), IRCADb-17's CT alone (no mask, no
covariates → auto-segmented, slices only), HCC_009 (AP and VP DICOM series, no mask → auto-segmented),
the pelvis of the TotalSegmentator example (no liver, no lungs: the plausibility gate refuses its automatic
mask), plus two broken cases.
"""

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk

from conftest import shared_path
from DELICAITELib.batch import describe_case, find_cases
from DELICAITELib.demo import DEMO_CLINICAL, write_demo_inputs
from DELICAITELib.errors import DelicaiteError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = PROJECT_ROOT / "examples" / "batch_cases.py"


def read_summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
        return {row["case"]: row for row in csv.DictReader(handle)}


def run_script(cases: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(cases), str(out)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def real_cases(tmp_path_factory, ircadb17_dir, hcc009_dir):
    cases = tmp_path_factory.mktemp("cases")
    ircadb = cases / "ircadb17"
    ircadb.mkdir()
    (ircadb / "ap").symlink_to(ircadb17_dir / "PATIENT_DICOM")
    (ircadb / "MASKS_DICOM").symlink_to(ircadb17_dir / "MASKS_DICOM")
    (ircadb / "clinical.json").write_text(json.dumps(DEMO_CLINICAL))
    (cases / "ircadb17-auto").mkdir()
    (cases / "ircadb17-auto" / "ap").symlink_to(ircadb17_dir / "PATIENT_DICOM")
    hcc = cases / "hcc009"
    hcc.mkdir()
    # The arterial and portal-venous series, as the shared data README identifies them.
    (hcc / "ap").symlink_to(hcc009_dir / "series-4-recon2-liver-3-phase")
    (hcc / "vp").symlink_to(hcc009_dir / "series-103-liver-3-phase")
    pelvis = cases / "pelvis"
    pelvis.mkdir()
    sitk.WriteImage(sitk.ReadImage(str(shared_path("totalseg-example", "example_ct.nii.gz")))[:, :, 0:40],
                    str(pelvis / "ap.nii.gz"))  # a crop written under the test's temporary folder
    (cases / "empty").mkdir()
    (cases / "not-ct").mkdir()
    (cases / "not-ct" / "ap.nii.gz").write_text("this is not a CT volume")
    return cases


@pytest.fixture(scope="module")
def first_run(real_cases, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch-out")
    return run_script(real_cases, out), out


def test_batch_writes_one_result_per_good_case(first_run):
    completed, out = first_run
    assert completed.returncode == 1, completed.stderr  # three failed cases: 1, but the batch went on
    summary = read_summary(out)
    assert set(summary) == {"ircadb17", "ircadb17-auto", "hcc009", "pelvis", "empty", "not-ct"}
    assert summary["hcc009"]["status"] == "done"  # its automatic liver passes the gate
    assert summary["ircadb17"]["status"] == "done" and summary["ircadb17-auto"]["status"] == "done"
    for case in ("ircadb17", "ircadb17-auto"):
        assert (out / case / "result.json").is_file() and not (out / case / "error.txt").exists()
        assert not (out / f"{case}.partial").exists()


def test_full_case_has_the_three_slices_and_a_recommendation(first_run):
    _, out = first_run
    result = json.loads((out / "ircadb17" / "result.json").read_text())
    assert result["kind"] == "full_case" and result["mask_source"] == "given"
    assert [s["index"] for s in result["slices"]] == [97, 96, 95]
    assert result["recommendation"] in {"TACE", "HAIC", "no clear preference"}
    assert 0 < result["risk"]["p_pd_tace"] < 1 and 0 < result["risk"]["p_pd_haic"] < 1
    assert result["single_phase"] is True  # no vp given: the CT serves as both phases
    assert (out / "ircadb17" / "report.png").is_file() and (out / "ircadb17" / "features.json").is_file()
    # livertumor1 (85.6 mL) + livertumor2 (78.6 mL) per the data README
    assert result["volumes_ml"]["tumour_ml"] == pytest.approx(85.6 + 78.6, rel=0.05)


def test_case_without_mask_or_covariates_is_auto_segmented(first_run, ircadb17_image):
    import SimpleITK as sitk

    _, out = first_run
    result = json.loads((out / "ircadb17-auto" / "result.json").read_text())
    assert result["kind"] == "slices_only" and "recommendation" not in result
    assert result["mask_source"].startswith("automatic")
    # the reference liver is 1.86 L; the automatic one passed the plausibility gate
    assert 1500 < result["volumes_ml"]["liver_ml"] < 2300
    label = sitk.ReadImage(str(out / "ircadb17-auto" / "segmentation.nii.gz"))
    assert label.GetSize() == ircadb17_image.GetSize()
    assert label.GetOrigin() == pytest.approx(ircadb17_image.GetOrigin(), abs=1e-3)
    # the shipped weights' tumour is withheld: no slices, and the case says how to get them
    assert result["slices"] == [] and result["volumes_ml"]["tumour_ml"] == 0
    assert any("draw the tumour" in w and "--tumour-seed" in w for w in result["warnings"])


def test_implausible_automatic_mask_is_refused_not_used(first_run):
    _, out = first_run
    summary = read_summary(out)
    assert summary["pelvis"]["status"] == "error"
    error = (out / "pelvis" / "error.txt").read_text()
    assert "automatic liver mask is implausible" in error and "no lung base in the field of view" in error
    assert "draw the liver and tumour" in error
    assert not (out / "pelvis" / "result.json").exists()


def test_broken_cases_get_an_error_file(first_run):
    _, out = first_run
    summary = read_summary(out)
    empty_error = (out / "empty" / "error.txt").read_text()
    assert "no CT found" in empty_error and summary["empty"]["status"] == "error"
    not_ct_error = (out / "not-ct" / "error.txt").read_text()
    assert "not-ct/ap.nii.gz" in not_ct_error
    # Folders above the cases folder often name patients or studies: they stay out of what the batch writes.
    cases_parent = str(out.parent)
    assert cases_parent not in not_ct_error and cases_parent not in (out / "summary.csv").read_text()
    assert not (out / "empty" / "result.json").exists() and not (out / "not-ct" / "result.json").exists()


def test_resume_skips_cases_already_done(first_run, real_cases):
    _, out = first_run
    before = {case: (out / case / "result.json").stat().st_mtime_ns for case in ("ircadb17", "ircadb17-auto")}
    completed = run_script(real_cases, out)
    assert completed.returncode == 1
    summary = read_summary(out)
    assert summary["ircadb17"]["status"] == "skipped" and summary["ircadb17-auto"]["status"] == "skipped"
    assert summary["ircadb17"]["slices"] == "97 96 95" and summary["ircadb17"]["recommendation"]
    assert summary["empty"]["status"] == "error"  # failed cases are retried, and fail again
    after = {case: (out / case / "result.json").stat().st_mtime_ns for case in before}
    assert after == before


def test_case_discovery_explains_what_is_missing(tmp_path):
    (tmp_path / "two-cts").mkdir()
    (tmp_path / "two-cts" / "series1").mkdir()
    (tmp_path / "two-cts" / "series2").mkdir()
    (tmp_path / "vp-only").mkdir()
    (tmp_path / "vp-only" / "vp.nrrd").write_bytes(b"")
    (tmp_path / "named").mkdir()
    for name in ("AP.nii.gz", "vp.nii.gz", "mask.nrrd", "clinical.json", "notes.txt"):
        (tmp_path / "named" / name).write_bytes(b"")
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "ct.mha").write_bytes(b"")
    (tmp_path / "single" / "mask.nii.gz").write_bytes(b"")
    cases = {c.name: c for c in find_cases(tmp_path)}
    assert "series1, series2" in cases["two-cts"].problem and "name it ap" in cases["two-cts"].problem
    assert "no ap phase" in cases["vp-only"].problem
    named = cases["named"]
    assert named.problem is None
    assert (named.ap.name, named.vp.name, named.mask.name, named.clinical.name) == (
        "AP.nii.gz", "vp.nii.gz", "mask.nrrd", "clinical.json")
    single = describe_case(tmp_path / "single")
    assert single.ap.name == "ct.mha" and single.vp is None and single.mask.name == "mask.nii.gz"
    with pytest.raises(DelicaiteError, match="no case folders"):
        find_cases(tmp_path / "single")
    with pytest.raises(DelicaiteError, match="not found"):
        find_cases(tmp_path / "missing")


def test_batch_subcommand_on_the_phantom_case(tmp_path, capsys):
    """`delicaite batch` through its own parser (no real data needed): a full phantom case."""
    from DELICAITELib.cli import batch_commands

    case = tmp_path / "cases" / "phantom"
    paths = write_demo_inputs(case / "raw")
    for role in ("ap", "vp", "mask"):
        paths[role].rename(case / f"{role}.nii.gz")
    paths["clinical"].rename(case / "clinical.json")
    (case / "raw").rmdir()
    parser = argparse.ArgumentParser()
    batch_commands.add_parsers(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(["batch", str(tmp_path / "cases"), "--out", str(out)])
    args.func(args)
    printed = capsys.readouterr().out
    result = json.loads((out / "phantom" / "result.json").read_text())
    assert result["kind"] == "full_case" and result["single_phase"] is False
    assert f"phantom\tdone\t{result['recommendation']}" in printed
    assert len(result["slices"]) == 3


def test_script_saves_a_scene_per_case(tmp_path):
    """`--scenes` (plain Python with slicer-core): each done case reloads as AP, VP and its segmentation."""
    pytest.importorskip("slicer")
    from DELICAITELib.mrml import load_scene

    case = tmp_path / "cases" / "phantom"
    paths = write_demo_inputs(case)
    paths["ap"].rename(case / "ap.nii.gz")
    paths["vp"].rename(case / "vp.nii.gz")
    paths["mask"].rename(case / "mask.nii.gz")
    out = tmp_path / "out"
    completed = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "cases"), str(out), "--scenes"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    scene = load_scene(out / "phantom" / "scene" / "scene.mrml")
    volumes = {scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode").GetName()
               for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))}
    assert volumes == {"AP", "VP"}
    segmentation = scene.GetFirstNodeByClass("vtkMRMLSegmentationNode").GetSegmentation()
    names = {segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())}
    assert names == {"Liver", "Tumor"}


def test_batch_progress_events_carry_the_share_of_the_whole_batch(tmp_path):
    """The hub's progress bar reads event.fraction (no text matching): each case owns its share of the
    batch, fractions only grow, a case's last event says how it ended and the batch ends at 1."""
    from DELICAITELib.batch import process_cases

    cases = tmp_path / "cases"
    for name, with_clinical in (("a-full", True), ("b-slices", False)):
        paths = write_demo_inputs(cases / name)
        for role in ("ap", "vp", "mask"):
            paths[role].rename(cases / name / f"{role}.nii.gz")
        if not with_clinical:
            paths["clinical"].unlink()
    events = []
    rows = process_cases(find_cases(cases), tmp_path / "out", progress=events.append)
    assert [(r["case"], r["status"], r["kind"]) for r in rows] == [("a-full", "done", "full_case"),
                                                                    ("b-slices", "done", "slices_only")]
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    ends = {e.message: e.fraction for e in events if e.message.endswith(": done")}
    assert ends == {"[case 1/2] a-full: done": 0.5, "[case 2/2] b-slices: done": 1.0}
    first_case = [e.fraction for e in events if e.message.startswith("[case 1/2]") and e.fraction is not None]
    assert max(first_case) <= 0.5
