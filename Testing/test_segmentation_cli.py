"""`delicaite segment`, `eval-seg`, `train-seg` and `case` without a mask, with the shipped weights."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import shared_path
from DELICAITELib.cli import main
from DELICAITELib.demo import DEMO_CLINICAL, demo_model_dir
from DELICAITELib.io import label_volumes_ml

# Pictures a person may want to look at after a test run (git-ignored).
PICTURES = Path(__file__).resolve().parent / "output"


def run_cli(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def ircadb17_segmented(ircadb17_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "ircadb17_seg.nii.gz"
    assert main(["segment", str(ircadb17_dir / "PATIENT_DICOM"), "--out", str(out), "--device", "cpu"]) == 0
    return out


REAL_CTS = {  # the real CTs without expert masks a new user would try first (../shared/data README)
    "hcc002_ap": ("hcc-tace-seg", "HCC_002", "series-4-recon2-liver-3-phase-ap"),
    "hcc006_ap": ("hcc-tace-seg", "HCC_006", "series-103-liver-3-phase-ap"),
    "hcc009_ap": ("hcc-tace-seg", "HCC_009", "series-4-recon2-liver-3-phase"),
    "hcc009_pv": ("hcc-tace-seg", "HCC_009", "series-103-liver-3-phase"),
    "totalseg_whole": ("totalseg-example", "example_ct.nii.gz"),
}


@pytest.mark.parametrize("name", sorted(REAL_CTS))
def test_real_ct_gets_a_picture_and_a_liver_or_a_warning(name, tmp_path, capsys):
    """No expert mask exists for these CTs: a person looks at the picture (three whole axial slices and a
    coronal view, in Testing/output/). What a test can hold: the automatic liver either meets the figures
    of a liver (0.9-3 L, no bright lumen over 10 mL, its dome at the lung bases) or `segment` says it is
    implausible, in its review file and on stderr; it never passes a wrong mask on silently."""
    PICTURES.mkdir(exist_ok=True)
    seg, preview = tmp_path / f"{name}.nii.gz", PICTURES / f"{name}_auto_liver.png"
    status, stdout, stderr = run_cli(capsys, "segment", shared_path(*REAL_CTS[name]), "--out", seg,
                                     "--preview", preview, "--device", "cpu")
    assert status == 0, stderr
    review = json.loads((tmp_path / f"{name}.review.json").read_text())
    figures = review["figures"]
    print(f"{name}: {json.dumps(review)}; picture: {preview}")
    assert preview.read_bytes()[:4] == b"\x89PNG"
    looks_like_a_liver = (900 <= figures["liver_ml"] <= 3000 and figures["largest_bright_region_ml"] <= 10
                          and figures.get("liver_top_below_lung_base_mm", 1e9) <= 50)
    if review["plausible"]:
        assert looks_like_a_liver, review
        assert "WARNING" not in stderr
    else:
        assert review["problems"] and "WARNING: the automatic liver mask is implausible" in stderr


def test_eval_seg_on_ircadb17(ircadb17_dir, ircadb17_segmented, tmp_path, capsys):
    report = tmp_path / "metrics.json"
    status, stdout, stderr = run_cli(capsys, "eval-seg", "--pred", ircadb17_segmented, "--ref", ircadb17_dir,
                                     "--out", report)
    assert status == 0, stderr
    metrics = json.loads(report.read_text())
    assert json.loads(stdout) == metrics
    liver = metrics["liver"]
    assert liver["dice"] > 0.85 and liver["hd95_mm"] is not None
    assert liver["volume_ref_ml"] == pytest.approx(label_volumes_ml(sitk.ReadImage(str(ircadb17_segmented)))
                                                   ["liver_ml"] - liver["volume_error_ml"], rel=1e-6)


def lesion_seeds_ras(label: sitk.Image, count: int) -> list[str]:
    """One click per lesion, as a reader would place it: the deepest point of each of the ``count``
    largest tumours of ``label``, as "R,A,S" text."""
    components = sitk.RelabelComponent(sitk.ConnectedComponent(label == 2), sortByObjectSize=True)
    seeds = []
    for k in range(1, count + 1):
        depth = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(components == k, insideIsPositive=True,
                                                                    useImageSpacing=True))
        z, y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        lx, ly, lz = label.TransformIndexToPhysicalPoint((int(x), int(y), int(z)))
        seeds.append(f"{-lx:.1f},{-ly:.1f},{lz:.1f}")
    return seeds


def test_case_without_mask_needs_a_drawn_or_seeded_tumour(ircadb17_dir, ircadb17_label, tmp_path, capsys):
    """The shipped weights' held-out tumour Dice is far below the bar, so the automatic tumour is withheld:
    without seeds the case stops and says what to do; one click per lesion makes it a whole case."""
    clinical = tmp_path / "case.json"
    clinical.write_text(json.dumps(DEMO_CLINICAL))
    ct = ircadb17_dir / "PATIENT_DICOM"
    common = ("case", "--ap", ct, "--vp", ct, "--clinical", clinical, "--model", demo_model_dir(), "--device", "cpu")
    status, _, stderr = run_cli(capsys, *common, "--out", tmp_path / "unseeded")
    assert status == 2
    assert "automatic tumour is withheld" in stderr and "--tumour-seed R,A,S" in stderr.strip().splitlines()[-1]
    assert not (tmp_path / "unseeded" / "result.json").exists()

    seeds = lesion_seeds_ras(ircadb17_label, 2)
    out = tmp_path / "seeded"
    status, _, stderr = run_cli(capsys, *common, "--out", out, *[f"--tumour-seed={s}" for s in seeds])
    assert status == 0, stderr
    result = json.loads((out / "result.json").read_text())
    assert result["mask_source"].startswith("automatic")
    assert result["recommendation"] in ("TACE", "HAIC")
    assert not any("withheld" in w for w in result["warnings"])  # the user seeded: nothing left to do
    # the slices come from the seeded tumours: the reference's largest tumour slices are among them
    reference_areas = (sitk.GetArrayViewFromImage(ircadb17_label) == 2).sum(axis=(1, 2))
    picked = [s["index"] for s in result["slices"]]
    assert all(reference_areas[i] > 0 for i in picked)
    assert int(np.argmax(reference_areas)) in range(min(picked) - 3, max(picked) + 4)


def test_seed_outside_the_liver_is_refused_in_one_line(ircadb17_dir, tmp_path, capsys):
    status, _, stderr = run_cli(capsys, "segment", ircadb17_dir / "PATIENT_DICOM", "--out", tmp_path / "s.nii.gz",
                                "--tumour-seed", "0,0,0", "--device", "cpu")
    assert status == 2
    assert "tumour seed at R,A,S = (0, 0, 0) mm" in stderr.strip().splitlines()[-1]
    status, _, stderr = run_cli(capsys, "segment", ircadb17_dir / "PATIENT_DICOM", "--out", tmp_path / "s.nii.gz",
                                "--tumour-seed", "1,2")
    assert status == 2 and "three numbers in mm, R,A,S" in stderr
    status, _, stderr = run_cli(capsys, "segment", ircadb17_dir / "PATIENT_DICOM", "--out", tmp_path / "seg")
    assert status == 2 and "name the label map with one of" in stderr


def test_totalsegmentator_backend_without_the_package(ircadb17_dir, tmp_path, capsys):
    if shutil.which("TotalSegmentator"):
        pytest.skip("TotalSegmentator is installed here")
    status, _, stderr = run_cli(capsys, "segment", ircadb17_dir / "PATIENT_DICOM", "--out", tmp_path / "s.nii.gz",
                                "--backend", "totalsegmentator")
    assert status == 2 and "TotalSegmentator is not installed" in stderr.strip().splitlines()[-1]


def test_train_seg_writes_checkpoints_and_resumes(tmp_path, capsys):
    """Two tiny synthetic image/label pairs in the plain NIfTI layout: one epoch, then resume to two."""
    data = tmp_path / "data"
    (data / "labels").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for case in ("a", "b", "c"):
        ct = np.full((40, 48, 48), -1000.0, np.float32)
        ct[5:35, 8:40, 8:40] = 40 + rng.normal(0, 10, (30, 32, 32))
        label = np.zeros(ct.shape, np.uint8)
        label[10:30, 12:36, 12:36] = 1
        label[16:24, 20:28, 20:28] = 2
        ct[label == 1] += 60
        for array, path in ((ct, data / f"{case}.nii.gz"), (label, data / "labels" / f"{case}.nii.gz")):
            image = sitk.GetImageFromArray(array)
            image.SetSpacing((3.0, 3.0, 3.0))
            sitk.WriteImage(image, str(path))
    out = tmp_path / "model"
    fast = ("--iterations", 2, "--batch-size", 1, "--device", "cpu")
    status, _, stderr = run_cli(capsys, "train-seg", data, "--out", out, "--epochs", 1, *fast)
    assert status == 0, stderr
    assert (out / "checkpoint" / "model.json").exists() and (out / "best" / "weights.npz").exists()
    status, stdout, stderr = run_cli(capsys, "train-seg", data, "--out", out, "--epochs", 2, *fast, "--resume")
    assert status == 0, stderr
    checkpoint = json.loads((out / "checkpoint" / "model.json").read_text())
    assert checkpoint["epoch"] == 2 and [h["epoch"] for h in checkpoint["history"]] == [1, 2]
