"""Fail safe (issue 16): each faulty input of Testing/faults.py, built from the real IRCADb-17 case, gets one
``error:`` line and exit 2, and a good result already in the output folder survives, with failure.json
saying that the last run failed. Testing/fault_matrix.py runs the same faults in child processes."""

import json
import shutil

import pytest

from conftest import shared_path
from DELICAITELib.cli import main
from DELICAITELib.storage import FAILURE_FILE, output_lock
from faults import FAULTS, Inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    shared_path("ircadb-17")  # skips with a message when ../shared is absent
    return Inputs(tmp_path_factory.mktemp("fault-inputs"))


@pytest.fixture(scope="module")
def good_result(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("good") / "out"
    assert main(inputs.case(out)) == 0
    return out


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != FAILURE_FILE
            and not p.name.startswith(".")}


def run_fault(name, inputs, good_result, tmp_path, capsys):
    """Build fault ``name``, put the good result where it writes, run it; (status, error line)."""
    fault = FAULTS[name](inputs, tmp_path)
    if fault.needs_previous:
        shutil.copytree(good_result, fault.out)
    before = snapshot(fault.out) if fault.needs_previous else None
    capsys.readouterr()
    status = main(fault.argv)
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    if fault.needs_previous:
        assert snapshot(fault.out) == before, "the previous result changed"
        if status != 0:
            record = json.loads((fault.out / FAILURE_FILE).read_text())
            assert record["command"] == "case" and record["error"] and str(tmp_path) not in record["error"]
    return status, (lines[-1] if lines else "")


@pytest.mark.parametrize("name, says", [
    # implausible geometry and images
    ("mask_without_geometry", "default header (spacing 1 mm, origin 0)"),
    ("mask_wrong_spacing", "74% of its labelled volume falls outside the image"),
    ("mask_shifted_20mm", "its origin is 20.0 mm away"),
    ("vp_partial_coverage", "the portal-venous phase covers only 45% of the arterial one"),
    ("mr_with_ct_padding", "does not look like CT"),
    ("one_voxel_tumour", "the tumour's largest slice is 0.6 mm²"),
    ("dicom_truncated_slice", "left out as unreadable: image_59"),
    # model files whose values are impossible, checked when loaded
    ("model_zero_std", "the scaler's standard deviation of age is 0 (it must be positive)"),
    ("model_absurd_shape", "n_features is '-3', not a whole number"),
    ("model_newer_version", "was written by delicaite 9.0.0, newer than this"),
    # files that are not what they claim
    ("clinical_duplicate_key", "gives 'age' twice: keep one value"),
    ("clinical_deeply_nested", "is nested too deeply"),
    ("clinical_latin1", "codec can't decode"),
    ("vp_symlink_loop", "cannot be followed to a file"),
    # output paths, checked before any work
    ("out_is_a_file", "is a file: name a folder for the outputs"),
    ("out_parent_is_a_file", "is a file, not a folder"),
    ("segment_out_without_suffix", "name the label map with one of"),
])
def test_a_faulty_input_is_refused_with_one_line_and_keeps_the_previous_result(
        name, says, inputs, good_result, tmp_path, capsys):
    status, line = run_fault(name, inputs, good_result, tmp_path, capsys)
    assert status == 2 and says in line, line


def test_a_resigned_model_edit_is_accepted_and_changes_the_answer(inputs, good_result, tmp_path, capsys):
    """What a checksum cannot do: an edit whose sums were recomputed loads (a signature would be needed)."""
    fault = FAULTS["model_edited"](inputs, tmp_path)
    assert main(fault.argv) == 0
    edited = json.loads((fault.out / "result.json").read_text())
    good = json.loads((good_result / "result.json").read_text())
    assert abs(edited["interaction_score"]["h"] - good["interaction_score"]["h"]) > 0.01
    provenance = edited["model"]["provenance"]  # recorded in every result: tool, version, date, cohort size
    assert provenance["trained_by"].startswith("delicaite") and provenance["made_with"] and provenance["cohort_size"] > 0


def test_non_finite_predictions_are_never_made():
    from DELICAITELib.errors import DelicaiteError
    from DELICAITELib.recommendation import InteractionScore, Prediction, Risks

    with pytest.raises(DelicaiteError, match=r"non-finite P\(PD \| HAIC\), h for this patient"):
        Prediction(Risks(0.4, float("nan")), InteractionScore(float("nan"), -1.0, 1.0, 0.9, 50.0), cutoff=0.0)


def test_an_over_long_value_is_not_echoed_in_full(inputs, good_result, tmp_path, capsys):
    fault = FAULTS["clinical_overlong_value"](inputs, tmp_path)
    shutil.copytree(good_result, fault.out)
    capsys.readouterr()
    assert main(fault.argv) == 2
    stderr = capsys.readouterr().err
    assert len(stderr) < 5_000 and "more characters)" in stderr


def test_a_folder_in_use_is_refused_and_a_good_rerun_clears_the_failure(inputs, good_result, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(good_result, out)
    with output_lock(out):  # another run holds the folder
        assert main(inputs.case(out)) == 2
    assert "another delicaite run is writing into" in capsys.readouterr().err
    (out / FAILURE_FILE).write_text("{}")
    assert main(inputs.case(out)) == 0  # the folder is free again, and the run succeeds
    assert not (out / FAILURE_FILE).exists()


def test_eval_seg_writes_no_paths(inputs, tmp_path):
    fault = FAULTS["eval_seg_paths"](inputs, tmp_path)
    assert main(fault.argv) == 0
    assert str(tmp_path) not in fault.out.read_text()


def test_an_unreadable_volume_says_permission_denied(inputs, monkeypatch):
    """As root every file is readable, so the permission is taken away by stand-in: the message must name
    the permission, not call the file an invalid volume (what ITK's reader says)."""
    import os

    from DELICAITELib.errors import ImageError
    from DELICAITELib.io import read_image

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(inputs.ap) else real_access(path, mode))
    with pytest.raises(ImageError, match="permission denied"):
        read_image(inputs.ap)
