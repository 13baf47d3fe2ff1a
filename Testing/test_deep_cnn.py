"""The supervised CNN per phase, its model files, AP/VP stacking and Grad-CAM.

The real data has no per-image PD labels, so learning is checked on an honest proxy task on real CT:
tumour vs healthy-liver patches of 3D-IRCADb patient 17 (one tumour on z 81–110), training patches from
slices z ≤ 93 and held-out ones from z ≥ 98, so no held-out patch shares a slice (or a neighbour) with
a training patch. Small sizes (64 px patches, a few epochs) keep the file quick on two CPU cores.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from matplotlib.image import imread
from sklearn.metrics import roc_auc_score

from DELICAITELib.errors import DelicaiteError, ModelFileError
from DELICAITELib.features.deep.cnn import (
    N_FEATURES,
    PhaseCNN,
    case_cnn_features,
    load_phase_cnn,
    save_phase_cnn,
    train_phase_cnn,
)
from DELICAITELib.features.deep.gradcam import FIGURE_DPI, FIGURE_SIZE_INCHES, grad_cam, save_gradcam_png
from DELICAITELib.features.deep.patches import labelled_tissue_patches
from DELICAITELib.features.deep.stacking import PhaseStacking
from DELICAITELib.io import Case
from DELICAITELib.preprocessing import INPUT_SIZE, preprocess_case
from DELICAITELib.slices import largest_tumour_slices

OUTPUT = Path(__file__).resolve().parent / "output"  # git-ignored; pictures for a person to look at
LAST_TRAINING_SLICE, FIRST_HELD_OUT_SLICE = 93, 98  # a 4-slice (6.4 mm) gap between the two sets
PATCH = {"size_mm": 24.0, "out_size": 64}


def label_between(label: sitk.Image, first: int, last: int) -> sitk.Image:
    """The label map with every slice outside z in [first, last] cleared, so patches come from those only."""
    labels = sitk.GetArrayFromImage(label)
    labels[:first], labels[last + 1:] = 0, 0
    kept = sitk.GetImageFromArray(labels)
    kept.CopyInformation(label)
    return kept


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def training_patches(ircadb17_image, ircadb17_label):
    return labelled_tissue_patches(ircadb17_image, label_between(ircadb17_label, 0, LAST_TRAINING_SLICE), 60,
                                   seed=0, **PATCH)


@pytest.fixture(scope="module")
def held_out_patches(ircadb17_image, ircadb17_label):
    return labelled_tissue_patches(ircadb17_image, label_between(ircadb17_label, FIRST_HELD_OUT_SLICE, 10_000), 40,
                                   seed=1, **PATCH)


@pytest.fixture(scope="module")
def tissue_cnn(training_patches):
    """A CNN trained to tell tumour (1) from healthy liver (0), the stand-in for PD."""
    crops, y = training_patches
    return train_phase_cnn(crops, y, epochs=5, batch_size=16, seed=0, phase="AP")


@pytest.fixture(scope="module")
def ircadb17_crops(ircadb17_image, ircadb17_label):
    """The study's crops of the three largest tumour slices; the one CT stands in for both phases."""
    picked = largest_tumour_slices(ircadb17_label)  # z 95–97: in the gap, none of them a training slice
    return preprocess_case(Case(ap=ircadb17_image, vp=ircadb17_image, label=ircadb17_label), picked)


def as_224(cnn: PhaseCNN, phase: str) -> PhaseCNN:
    """The patch CNN on 224 px crops. ResNet-18 is fully convolutional up to its adaptive pooling, and a
    24 mm patch at 64 px (2.7 px/mm) is about the scale of the 224 px crop (1.3–3.2 px/mm), so the
    network reads the crop's tissue as it read the patches."""
    return PhaseCNN(cnn.network, (INPUT_SIZE, INPUT_SIZE), phase, cnn.settings, cnn.history)


# ------------------------------------------------------------------------------------------- learning
def test_cnn_tells_tumour_from_liver_on_held_out_slices(tissue_cnn, held_out_patches):
    crops, y = held_out_patches
    probabilities = tissue_cnn.predict_proba(crops)
    assert probabilities.shape == (len(y),) and np.all((probabilities >= 0) & (probabilities <= 1))
    # Over seeds 0–3 an untrained ResNet-18's logit ranks these patches at AUC 0.68–0.82 and training on
    # shuffled labels gives 0.30–0.54; five epochs of real training gave 0.89–1.00 over seeds 0–7, and
    # 0.99 for seed 0 with one or two threads.
    assert roc_auc_score(y, probabilities) >= 0.9
    features = tissue_cnn.penultimate_features(crops[:5])
    assert features.shape == (5, N_FEATURES) and np.all(np.isfinite(features))
    assert len(tissue_cnn.history) == 5 and tissue_cnn.settings["n_positive"] == 60


def test_training_is_repeatable_for_a_seed_and_reports_each_epoch(training_patches, held_out_patches):
    crops, y = training_patches[0][::5], training_patches[1][::5]  # 24 patches: 12 tumour, 12 liver
    validation = (held_out_patches[0][::5], held_out_patches[1][::5])
    records = []
    first = train_phase_cnn(crops, y, epochs=2, batch_size=8, seed=3, validation=validation, progress=records.append)
    second = train_phase_cnn(crops, y, epochs=2, batch_size=8, seed=3, validation=validation)
    other_seed = train_phase_cnn(crops, y, epochs=2, batch_size=8, seed=4, validation=validation)
    probe = held_out_patches[0][:6]
    assert np.array_equal(first.predict_proba(probe), second.predict_proba(probe))
    assert not np.allclose(first.predict_proba(probe), other_seed.predict_proba(probe))
    assert [r.epoch for r in records] == [1, 2] and all(r.epochs == 2 for r in records)
    assert all(math.isfinite(r.loss) and math.isfinite(r.validation_loss) and 0 <= r.validation_auc <= 1 for r in records)
    # the kept weights are those of the epoch with the highest validation AUC (then the lowest loss)
    best = min(range(2), key=lambda i: (-records[i].validation_auc, records[i].validation_loss))
    assert first.settings["kept_epoch"] == best + 1
    kept = first.predict_proba(validation[0])
    assert roc_auc_score(validation[1], kept) == pytest.approx(records[best].validation_auc, abs=1e-9)


def test_bad_input_is_refused_with_a_one_line_message(training_patches, tissue_cnn):
    crops, y = training_patches
    with_nan = crops[:4].copy()
    with_nan[0, 3, 3] = np.nan
    cases = [
        lambda: train_phase_cnn(crops[0], y[:1]),                        # one crop, not a stack
        lambda: train_phase_cnn(with_nan, y[:4]),                        # NaN pixels
        lambda: train_phase_cnn(crops[:4], np.ones(4)),                  # one class only
        lambda: train_phase_cnn(crops[:4], y[:3]),                       # label count
        lambda: train_phase_cnn(crops[:, :16, :16], y),                  # too small for ResNet-18
        lambda: train_phase_cnn(crops, y, validation=(crops[:4, :40, :40], y[:4])),  # validation of another size
        lambda: tissue_cnn.predict_proba(np.zeros((2, 80, 80), np.float32)),  # not the trained size
        lambda: case_cnn_features({"AP": crops[:3]}, {"VP": tissue_cnn}),    # an AP network in the VP slot
    ]
    for call in cases:
        with pytest.raises(DelicaiteError) as caught:
            call()
        assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------------------- model files
def test_saved_cnn_loads_to_identical_predictions_and_tampering_is_refused(tissue_cnn, held_out_patches, tmp_path):
    meta_path = save_phase_cnn(tissue_cnn, tmp_path / "ap_cnn", note="tumour vs liver proxy")
    loaded = load_phase_cnn(meta_path.parent)
    crops = held_out_patches[0][::4]
    assert np.array_equal(loaded.predict_proba(crops), tissue_cnn.predict_proba(crops))
    assert np.array_equal(loaded.penultimate_features(crops), tissue_cnn.penultimate_features(crops))
    assert loaded.phase == "AP" and loaded.input_size == (64, 64) and loaded.settings["epochs"] == 5
    meta = json.loads(meta_path.read_text())
    assert meta["format"] == "delicaite-phase-cnn" and meta["architecture"]["name"] == "resnet18"
    assert {"torch", "monai", "numpy", "delicaite"} <= set(meta["library_versions"])

    weights = meta_path.parent / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_phase_cnn(meta_path)
    save_phase_cnn(tissue_cnn, tmp_path / "edited")
    edited = json.loads((tmp_path / "edited" / "model.json").read_text())
    edited["phase"] = "VP"
    (tmp_path / "edited" / "model.json").write_text(json.dumps(edited))
    with pytest.raises(ModelFileError, match="sha256"):
        load_phase_cnn(tmp_path / "edited")


# ------------------------------------------------------------------------------------------- stacking
def test_stacking_recovers_a_known_logistic_truth_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    n = 4000
    logit_ap = rng.normal(0.0, 1.5, n)
    logit_vp = 0.5 * logit_ap + rng.normal(0.0, 1.2, n)  # correlated, as two phases of one tumour are
    truth = np.array([-0.4, 0.7, 1.1])  # intercept, w_AP, w_VP
    design = np.column_stack([np.ones(n), logit_ap, logit_vp])
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-design @ truth))
    p_ap, p_vp = 1.0 / (1.0 + np.exp(-logit_ap)), 1.0 / (1.0 + np.exp(-logit_vp))
    stacking = PhaseStacking(C=math.inf).fit(p_ap, p_vp, y)
    # Standard errors from the Fisher information at the truth (≈ 0.04–0.06 for n = 4000): every fitted
    # number must lie within 4 of them, which an estimate off by a sign or a scale would not.
    mu = 1.0 / (1.0 + np.exp(-design @ truth))
    standard_errors = np.sqrt(np.diag(np.linalg.inv(design.T @ (design * (mu * (1 - mu))[:, None]))))
    fitted = np.array([stacking.intercept_, *stacking.coef_])
    assert np.all(np.abs(fitted - truth) < 4 * standard_errors), (fitted, truth, standard_errors)

    stored = json.loads(json.dumps(stacking.to_dict(), allow_nan=False))  # as it would sit in model.json
    restored = PhaseStacking.from_dict(stored)
    assert restored.to_dict() == stacking.to_dict()
    assert np.array_equal(restored.predict_proba(p_ap, p_vp), stacking.predict_proba(p_ap, p_vp))
    assert PhaseStacking.from_dict(PhaseStacking().fit(p_ap, p_vp, y).to_dict()).C == 1.0
    with pytest.raises(DelicaiteError):
        stacking.predict_proba(p_ap, p_vp[:-1])
    with pytest.raises(DelicaiteError):
        PhaseStacking().fit(p_ap, p_vp, np.zeros(n))
    with pytest.raises(DelicaiteError):
        PhaseStacking.from_dict({**stored, "kind": "something else"})


# ----------------------------------------------------------------------------- real crops: features, Grad-CAM
def test_case_cnn_features_name_every_column(tissue_cnn, ircadb17_crops):
    columns = case_cnn_features(ircadb17_crops, {"AP": as_224(tissue_cnn, "AP"), "VP": as_224(tissue_cnn, "VP")})
    assert len(columns) == 2 * (1 + N_FEATURES)
    expected = [f"deep_cnn_{p}_{name}" for p in ("ap", "vp") for name in ["prob", *(f"f{k:03d}" for k in range(512))]]
    assert list(columns) == expected
    assert all(isinstance(v, float) and math.isfinite(v) for v in columns.values())
    assert 0.0 <= columns["deep_cnn_ap_prob"] <= 1.0
    # the same CT in both slots gives the same numbers: the columns do not depend on the phase name
    assert columns["deep_cnn_ap_f007"] == columns["deep_cnn_vp_f007"]


def test_gradcam_png_of_the_largest_tumour_slice(tissue_cnn, ircadb17_crops, tmp_path):
    crop = ircadb17_crops["AP"][0]
    cam = grad_cam(as_224(tissue_cnn, "AP"), crop)
    assert cam.shape == crop.shape and cam.dtype == np.float32
    assert cam.min() >= 0.0 and cam.max() <= 1.0 and cam.max() - cam.min() > 0.5
    # MONAI's hooks went on a copy: the caller's network is left as it was
    assert not tissue_cnn.network.layer4._forward_hooks and not tissue_cnn.network.layer4._backward_hooks
    picture_options = {"title": "IRCADb-17, z = 97: tumour-vs-liver CNN", "colour_bar_label": "Grad-CAM (towards tumour)"}
    path = save_gradcam_png(crop, cam, tmp_path / "gradcam.png", **picture_options)
    OUTPUT.mkdir(exist_ok=True)
    save_gradcam_png(crop, cam, OUTPUT / "ircadb17_gradcam.png", **picture_options)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    picture = imread(path)
    width, height = (round(side * FIGURE_DPI) for side in FIGURE_SIZE_INCHES)
    assert picture.shape[:2] == (height, width)
    assert np.ptp(picture[..., :3]) > 0.5  # not a blank canvas
    with pytest.raises(DelicaiteError):
        save_gradcam_png(crop, cam[:10], tmp_path / "bad.png")
