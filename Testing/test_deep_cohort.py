"""`delicaite deep` on a cohort: pretraining, block report and the CNN per phase, from kept crops.

The cohort is simulated (covariates, centres, PD) and each patient's crops are real CT patches of
IRCADb-17 chosen by a known rule: PD patients get tumour patches, the others healthy liver. So an
image model that works must find PD, and only the training centre's patients may be used.
"""

import json

import numpy as np
import pytest
import torch

from DELICAITELib.cli import main
from DELICAITELib.cohort import read_cohort, write_cohort
from DELICAITELib.cohort.features.crops import crops_path, write_crops_atomically
from DELICAITELib.cohort import design_frame
from DELICAITELib.cohort.splits import centre_split
from DELICAITELib.cohort.deep import cohort_block_report, train_cohort_cnns
from DELICAITELib.cohort.training import train_cohort
from DELICAITELib.errors import DelicaiteError
from DELICAITELib.features.deep.encoder import ViTEncoder, load_encoder, save_encoder
from DELICAITELib.features.deep.patches import tissue_patches
from DELICAITELib.features.deep.vit import DinoViT

SIZE = 64  # crops of 64 px keep training on the CPU short; the code is the same at 224


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, ircadb17_image, ircadb17_label):
    from DELICAITELib.simulate import simulate_cohort

    root = tmp_path_factory.mktemp("deep")
    cohort_dir = write_cohort(simulate_cohort(90, seed=4), root / "cohort")
    frame = design_frame(read_cohort(cohort_dir, check_image_paths=False))
    n = len(frame)
    tumour = tissue_patches(ircadb17_image, ircadb17_label, "tumour", 6 * n, out_size=SIZE, seed=1)
    liver = tissue_patches(ircadb17_image, ircadb17_label, "liver", 6 * n, out_size=SIZE, seed=2)
    cases = root / "features" / "cases"
    cases.mkdir(parents=True)
    for k, (pid, pd_value) in enumerate(zip(frame["patient_id"], frame["pd"])):
        source = tumour if pd_value == 1 else liver
        write_crops_atomically(crops_path(cases, pid), {"AP": source[6 * k:6 * k + 3], "VP": source[6 * k + 3:6 * k + 6]})
    return cohort_dir, root / "features", frame


def training_ids(frame) -> set:
    splits, _ = centre_split(frame)
    return set(frame["patient_id"][(splits["set"] == "training").to_numpy() & frame["pd"].notna().to_numpy()])


def test_cnn_per_phase_finds_pd_and_draws_grad_cam(cohort, tmp_path):
    cohort_dir, features, frame = cohort
    summary = train_cohort_cnns(cohort_dir, features, tmp_path / "cnn", epochs=4, seed=0)
    assert summary["n_training_patients"] + summary["n_validation_patients"] == len(training_ids(frame))
    for phase in ("AP", "VP"):
        assert summary["phases"][phase]["validation_auc"] > 0.85, summary["phases"]
        assert (tmp_path / "cnn" / f"cnn_{phase.lower()}" / "model.json").is_file()
    assert summary["stacked_validation_auc"] > 0.85
    # the folder is what `cohort features --deep-cnn` loads: both networks and the stacking, checksummed
    from DELICAITELib.features.deep.cnn import load_phase_cnns

    cnns, stacking = load_phase_cnns(tmp_path / "cnn")
    assert {p: c.phase for p, c in cnns.items()} == {"AP": "AP", "VP": "VP"}
    assert stacking.to_dict() == summary["stacking"]
    pictures = [tmp_path / "cnn" / p for p in summary["gradcam"]]
    assert len(pictures) == 6 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures)
    # no patient identifier in what was written
    written = (tmp_path / "cnn" / "cnn_training.json").read_text() + " ".join(p.name for p in pictures)
    assert not any(pid in written for pid in frame["patient_id"])


def test_block_report_uses_the_training_centre_only(cohort, tmp_path):
    cohort_dir, features, frame = cohort
    torch.manual_seed(0)
    save_encoder(ViTEncoder(DinoViT(embed_dim=48, depth=3, num_heads=3, patch_size=8, img_size=SIZE)), tmp_path / "enc")
    report = cohort_block_report(tmp_path / "enc", cohort_dir, features, tmp_path / "report")
    assert report["blocks"] == [1, 2, 3] and report["settings"]["n"] == len(training_ids(frame))
    # tumour vs liver crops: even a random ViT's blocks see it; the recommended block is the best one
    assert max(report["knn_auc"]) > 0.8 and report["knn_auc"][report["recommended_block"] - 1] == max(report["knn_auc"])
    on_disk = json.loads((tmp_path / "report" / "block_report.json").read_text())
    assert on_disk["recommended_block"] == report["recommended_block"]
    assert all((tmp_path / "report" / f).is_file() for f in ("block_tsne.png", "block_indices.png"))


def test_cli_pretrain_then_encoder_is_usable(cohort, tmp_path, capsys):
    cohort_dir, features, _ = cohort
    assert main(["deep", "pretrain", "--cohort", str(cohort_dir), "--features", str(features), "--out",
                 str(tmp_path / "enc"), "--epochs", "2", "--image-size", "32"]) == 0
    assert "DINO loss" in capsys.readouterr().out
    record = json.loads((tmp_path / "enc" / "pretraining.json").read_text())
    assert len(record["losses"]) == 2 and np.all(np.isfinite(record["losses"]))
    assert (tmp_path / "enc" / "pretraining_loss.png").is_file()
    encoder = load_encoder(tmp_path / "enc")
    crops = np.zeros((2, SIZE, SIZE), np.float32)
    assert encoder.input_size == 32  # it sees crops at the size of its global views
    assert encoder.slice_features(crops, block=1).shape == (2, 2 * encoder.embed_dim)


def test_without_crops_the_error_says_what_to_run(cohort, tmp_path):
    cohort_dir, _, _ = cohort
    (tmp_path / "empty" / "cases").mkdir(parents=True)
    with pytest.raises(DelicaiteError, match="--save-crops"):
        train_cohort_cnns(cohort_dir, tmp_path / "empty", tmp_path / "cnn", epochs=1)
    assert main(["deep", "block-report", "--cohort", str(cohort_dir), "--features", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "r"), "--encoder", str(tmp_path / "missing")]) == 2


def test_every_training_command_uses_the_one_recorded_split(cohort, tmp_path):
    """The first training on the cohort records its split in the features folder; a later one asking for
    another seed is refused (its model would have trained on test patients), the same seed reads it back."""
    from DELICAITELib.cohort.deep import training_patients
    from DELICAITELib.cohort.splits import SPLIT_FILE, SPLIT_RECORD

    cohort_dir, features, frame = cohort
    first = training_patients(cohort_dir, features, seed=0)
    assert (features / SPLIT_FILE).is_file() and json.loads((features / SPLIT_RECORD).read_text())["seed"] == 0
    assert set(first["patient_id"]) == training_ids(frame)
    with pytest.raises(DelicaiteError, match="made with seed 0 .asked 3."):
        training_patients(cohort_dir, features, seed=3)
    features_table = features / "features.csv"
    frame[["patient_id"]].assign(AP_original_firstorder_Mean=np.linspace(0, 1, len(frame))).to_csv(features_table, index=False)
    with pytest.raises(DelicaiteError, match="made with seed 0"):
        train_cohort(cohort_dir, tmp_path / "m", features_table, seed=3, quick=True, ensemble=1, epochs=5)
