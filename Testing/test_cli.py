"""The `delicaite` command end to end: demo, a real case (IRCADb-17), simulate + train, bad input."""

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from DELICAITELib.cli import main
from DELICAITELib.demo import DEMO_CLINICAL, demo_model_dir

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture()
def clinical_json(tmp_path):
    def write(**changes):
        path = tmp_path / "case.json"
        path.write_text(json.dumps({**DEMO_CLINICAL, **changes}))
        return path
    return write


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out)]) == 0
    return out


def test_demo_writes_result_and_report(demo_out):
    result = json.loads((demo_out / "result.json").read_text())
    assert result["recommendation"] in {"TACE", "HAIC", "no clear preference"}
    risk, score = result["risk"], result["interaction_score"]
    assert 0 < risk["p_pd_tace"] < 1 and 0 < risk["p_pd_haic"] < 1
    # h is the logit difference of the two risks (ensemble mean of member logits: same sign at least).
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert np.sign(score["h"]) == np.sign(logit(risk["p_pd_haic"]) - logit(risk["p_pd_tace"]))
    assert score["lower"] <= score["h"] <= score["upper"]
    assert len(result["slices"]) == 3
    assert "simulated" in result["model"]["note"]
    assert (demo_out / "report.png").read_bytes()[:8] == PNG_MAGIC
    page = (demo_out / "report.html").read_text()
    assert "data:image/png;base64," in page and result["recommendation"] in page


def test_demo_slices_are_the_largest_of_its_own_mask(demo_out):
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(demo_out / "inputs" / "phantom_label.nii.gz")))
    counts = (label == 2).sum(axis=(1, 2))
    result = json.loads((demo_out / "result.json").read_text())
    assert [s["index"] for s in result["slices"]] == list(np.argsort(-counts, kind="stable")[:3])


def test_outputs_carry_no_paths_unless_asked(demo_out):
    text = (demo_out / "result.json").read_text()
    assert str(demo_out) not in text and "inputs" not in json.loads(text)


def test_case_on_ircadb17(ircadb17_dir, ircadb17_independent_largest, tmp_path, capsys, clinical_json):
    out = tmp_path / "out"
    status, stdout, stderr = run_cli(
        capsys, "case", "--ap", ircadb17_dir / "PATIENT_DICOM", "--vp", ircadb17_dir / "PATIENT_DICOM",
        "--mask", ircadb17_dir, "--clinical", clinical_json(), "--model", demo_model_dir(), "--out", out)
    assert status == 0, stderr
    result = json.loads((out / "result.json").read_text())
    # The report's slices are the three largest-tumour slices counted from the mask files by pydicom alone.
    assert [s["index"] for s in result["slices"]] == [index for _, index in ircadb17_independent_largest]
    assert [s["area_mm2"] for s in result["slices"]] == pytest.approx([a for a, _ in ircadb17_independent_largest])
    assert result["alignment"]["same_grid"] is True and result["alignment"]["single_phase"] is True
    assert "one image given as both AP and VP" in (out / "report.html").read_text()
    assert (out / "report.png").stat().st_size > 20_000
    assert "recommendation:" in stdout and "[4/4]" in stderr


def test_simulate_then_train(tmp_path, capsys):
    cohort, model_dir = tmp_path / "cohort", tmp_path / "model"
    status, _, stderr = run_cli(capsys, "simulate", "--n", 300, "--seed", 3, "--out", cohort)
    assert status == 0, stderr
    status, stdout, stderr = run_cli(capsys, "train", "--cohort", cohort, "--out", model_dir,
                                     "--ensemble", 2, "--epochs", 50)
    assert status == 0, stderr
    assert "trained on 300 patients" in stdout
    meta = json.loads((model_dir / "model.json").read_text())
    assert len(meta["weights_sha256"]) == 64


def one_line_error(capsys, *argv):
    status, _, stderr = run_cli(capsys, *argv)
    lines = stderr.strip().splitlines()
    assert status == 2
    assert lines[-1].startswith("error: ")
    return lines[-1]


@pytest.fixture()
def demo_inputs(tmp_path):
    from DELICAITELib.demo import write_demo_inputs
    return write_demo_inputs(tmp_path / "inputs")


def case_args(inputs, clinical, model, out):
    return ["case", "--ap", inputs["ap"], "--vp", inputs["vp"], "--mask", inputs["mask"],
            "--clinical", clinical, "--model", model, "--out", out]


def test_negative_albumin_is_refused(capsys, demo_inputs, clinical_json, tmp_path):
    line = one_line_error(capsys, *case_args(demo_inputs, clinical_json(alb=-5), demo_model_dir(), tmp_path / "o"))
    assert "ALB" in line.upper() and "-5" in line


def test_afp_as_text_is_refused(capsys, demo_inputs, clinical_json, tmp_path):
    line = one_line_error(capsys, *case_args(demo_inputs, clinical_json(afp="high"), demo_model_dir(), tmp_path / "o"))
    assert "AFP" in line.upper() and "high" in line


def test_tampered_model_is_refused(capsys, demo_inputs, clinical_json, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(demo_model_dir(), model)
    weights = bytearray((model / "weights.npz").read_bytes())
    weights[len(weights) // 2] ^= 0xFF
    (model / "weights.npz").write_bytes(bytes(weights))
    line = one_line_error(capsys, *case_args(demo_inputs, clinical_json(), model, tmp_path / "o"))
    assert "sha256" in line or "checksum" in line


def test_empty_tumour_mask_is_refused(capsys, demo_inputs, clinical_json, tmp_path):
    label = sitk.ReadImage(str(demo_inputs["mask"]))
    emptied = sitk.BinaryThreshold(label, 1, 2, 1, 0)  # liver kept, tumour gone
    sitk.WriteImage(sitk.Cast(emptied, sitk.sitkUInt8), str(demo_inputs["mask"]))
    line = one_line_error(capsys, *case_args(demo_inputs, clinical_json(), demo_model_dir(), tmp_path / "o"))
    assert "no tumour voxels" in line


def test_missing_optional_covariates_are_filled_and_listed(capsys, demo_inputs, tmp_path):
    record = {k: v for k, v in DEMO_CLINICAL.items() if k not in ("crp", "alt")}
    clinical = tmp_path / "partial.json"
    clinical.write_text(json.dumps(record))
    status, _, stderr = run_cli(capsys, *case_args(demo_inputs, clinical, demo_model_dir(), tmp_path / "o"))
    assert status == 0, stderr
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert sorted(result["imputed_inputs"]) == ["log_alt", "log_crp"]


def test_missing_required_covariate_is_refused(capsys, demo_inputs, tmp_path):
    clinical = tmp_path / "no_afp.json"
    clinical.write_text(json.dumps({k: v for k, v in DEMO_CLINICAL.items() if k != "afp"}))
    line = one_line_error(capsys, *case_args(demo_inputs, clinical, demo_model_dir(), tmp_path / "o"))
    assert "AFP" in line


def test_folder_with_two_series_is_refused(capsys, hcc009_dir, demo_inputs, clinical_json, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for series in ("series-4-recon2-liver-3-phase", "series-103-liver-3-phase"):
        for name in ("1-01.dcm", "1-02.dcm", "1-03.dcm"):
            (mixed / f"{series}-{name}").symlink_to(hcc009_dir / series / name)
    inputs = {**demo_inputs, "ap": mixed}
    line = one_line_error(capsys, *case_args(inputs, clinical_json(), demo_model_dir(), tmp_path / "o"))
    assert "holds 2 DICOM series" in line and "pass one series folder" in line


def test_two_dimensional_image_is_refused(capsys, demo_inputs, clinical_json, tmp_path):
    flat = tmp_path / "flat.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(demo_inputs["ap"]))[:, :, 20], str(flat))
    inputs = {**demo_inputs, "vp": flat}
    line = one_line_error(capsys, *case_args(inputs, clinical_json(), demo_model_dir(), tmp_path / "o"))
    assert "2-D" in line or "3-D" in line


def test_mr_like_intensities_are_refused(capsys, demo_inputs, clinical_json, tmp_path):
    ct = sitk.ReadImage(str(demo_inputs["ap"]))
    mr_like = sitk.RescaleIntensity(ct, 0.0, 1200.0)  # same anatomy, no air near -1000 HU
    path = tmp_path / "mr_like.nii.gz"
    sitk.WriteImage(mr_like, str(path))
    inputs = {**demo_inputs, "ap": path}
    line = one_line_error(capsys, *case_args(inputs, clinical_json(), demo_model_dir(), tmp_path / "o"))
    assert "does not look like CT" in line
