"""The liver/tumour network: dataset layouts, training (checkpoint, resume), shipped weights, inference.

Real-data parts use ../shared/data and skip without it. The IRCADb-17 inference check uses the
shipped weights, which were trained on IRCADb-17 among others, so it proves the pipeline (grids,
resampling, orientation), not generalisation; the leave-one-volume-out figures are in the model card.
"""

import json
import shutil
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from conftest import SHARED_DATA, shared_path
from DELICAITELib.errors import DelicaiteError, ImageError, ModelFileError
from DELICAITELib.segmentation.datasets import (
    find_training_pairs,
    load_pair,
    shared_training_volumes,
)
from DELICAITELib.segmentation.inference import MIN_LIVER_ML, segment
from DELICAITELib.segmentation.network import SegmentationConfig, build_network
from DELICAITELib.segmentation.training import train_segmentation
from DELICAITELib.segmentation.weights import SHIPPED_WEIGHTS, load_segmentation_weights

TINY = SegmentationConfig(spacing_mm=(6.0, 6.0, 6.0), patch_size=(32, 32, 16), channels=(8, 16, 32), strides=(2, 2))


def _phantom(seed: int = 0, spacing=(6.0, 6.0, 6.0)) -> tuple[sitk.Image, sitk.Image]:
    """Small abdomen-like CT: body ellipse (40 HU) in air, a bright liver blob (110 HU) with a tumour (50 HU)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:24, :48, :48]
    values = np.full(z.shape, -1000.0, np.float32)
    values[((y - 24) / 20) ** 2 + ((x - 24) / 22) ** 2 < 1] = 40
    liver = ((y - 22) / 9) ** 2 + ((x - 16) / 8) ** 2 + ((z - 12) / 8) ** 2 < 1
    tumour = ((y - 22) / 3) ** 2 + ((x - 15) / 3) ** 2 + ((z - 12) / 3) ** 2 < 1
    values[liver], values[tumour] = 110, 50
    values += rng.normal(0, 10, values.shape).astype(np.float32)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing)
    labels = np.zeros(z.shape, np.uint8)
    labels[liver], labels[tumour] = 1, 2
    label = sitk.GetImageFromArray(labels)
    label.CopyInformation(image)
    return image, label


def _write(image: sitk.Image, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


# --- dataset layouts -----------------------------------------------------------------------------

def test_msd_layout_with_dataset_json_and_nnunet_names(tmp_path):
    image, label = _phantom()
    msd = tmp_path / "Task03_Liver"
    _write(image, msd / "imagesTr" / "liver_0.nii.gz")
    _write(label, msd / "labelsTr" / "liver_0.nii.gz")
    _write(image, msd / "imagesTr" / "._liver_0.nii.gz")  # macOS resource fork shipped in the MSD tar
    (msd / "dataset.json").write_text(json.dumps(
        {"training": [{"image": "./imagesTr/liver_0.nii.gz", "label": "./labelsTr/liver_0.nii.gz"}]}))
    pairs = find_training_pairs(msd)
    assert [(p.name, p.kind) for p in pairs] == [("liver_0", "msd")]

    nnunet = tmp_path / "nnunet"
    _write(image, nnunet / "imagesTr" / "liver_007_0000.nii.gz")
    _write(label, nnunet / "labelsTr" / "liver_007.nii.gz")
    (pair,) = find_training_pairs(nnunet)
    assert pair.name == "liver_007" and pair.label_path.name == "liver_007.nii.gz"
    ct, mask = load_pair(pair)
    assert ct.GetSize() == mask.GetSize() and mask.GetPixelID() == sitk.sitkUInt8


def test_lits_and_generic_layouts(tmp_path):
    image, label = _phantom()
    lits = tmp_path / "lits"
    for n in (2, 10):
        _write(image, lits / "Training Batch 1" / f"volume-{n}.nii")
        _write(sitk.Cast(label, sitk.sitkFloat32), lits / "Training Batch 1" / f"segmentation-{n}.nii")
    _write(image, lits / "Training Batch 1" / "volume-11.nii")  # no segmentation: not a pair
    assert [(p.name, p.kind) for p in find_training_pairs(lits)] == [("lits-2", "lits"), ("lits-10", "lits")]
    assert np.array_equal(sitk.GetArrayFromImage(load_pair(find_training_pairs(lits)[0])[1]),
                          sitk.GetArrayViewFromImage(label))  # float 0/1/2 labels read as UInt8

    generic = tmp_path / "generic"
    _write(image, generic / "caseA.nrrd")
    _write(label, generic / "labels" / "caseA.nrrd")
    _write(image, generic / "caseB.nii.gz")
    _write(label, generic / "caseB_seg.nii.gz")
    pairs = find_training_pairs(generic)
    assert [(p.name, p.label_path.name, p.kind) for p in pairs] == [
        ("caseA", "caseA.nrrd", "nifti"), ("caseB", "caseB_seg.nii.gz", "nifti")]


def test_ircadb_layout_patient_and_folder_of_patients(tmp_path, ircadb17_dir):
    (pair,) = find_training_pairs(ircadb17_dir)
    assert pair.kind == "ircadb" and pair.image_path.name == "PATIENT_DICOM"
    (tmp_path / "3Dircadb1.17").symlink_to(ircadb17_dir, target_is_directory=True)
    (pair,) = find_training_pairs(tmp_path)
    assert pair.name == "3Dircadb1.17" and pair.label_path == tmp_path / "3Dircadb1.17"


def test_unrecognised_folder_names_the_layouts(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    (tmp_path / "PATIENT_DICOM.zip").write_bytes(b"PK")
    with pytest.raises(DelicaiteError, match=r"MSD Task03.*LiTS.*3D-IRCADb.*NIfTI/NRRD.*") as info:
        find_training_pairs(tmp_path)
    assert "unzip" in str(info.value) and "\n" not in str(info.value)


def test_shared_volumes_geometry():
    shared_path("lits-117")
    shared_path("totalseg-example")
    volumes = {name: (image, label) for name, image, label in shared_training_volumes(SHARED_DATA)}
    assert {"lits-117", "totalseg-sm", "totalseg-dicom"} <= set(volumes)
    for name, (image, label) in volumes.items():
        assert image.GetSize() == label.GetSize(), name
        liver_ml = np.count_nonzero(sitk.GetArrayViewFromImage(label)) * np.prod(label.GetSpacing()) / 1000
        assert 500 < liver_ml < 2500, (name, liver_ml)
    # totalseg-dicom: every liver voxel of the flipped-y seg lands on the CT (a pure flip, no loss)
    raw = sitk.ReadImage(str(SHARED_DATA / "totalseg-example" / "example_seg_dicom.nii.gz"))
    assert np.count_nonzero(sitk.GetArrayViewFromImage(volumes["totalseg-dicom"][1])) == np.count_nonzero(
        sitk.GetArrayViewFromImage(raw) == 5)


def test_lits117_is_in_lps_orientation():
    """The MRC crop has no header: check its axes by anatomy (identity direction, LPS index order)."""
    from DELICAITELib.segmentation.datasets import read_lits117

    image, label = read_lits117(shared_path("lits-117"))
    values, labels = sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(label)
    liver = np.argwhere(labels >= 1).mean(axis=0)  # (z, y, x)
    spine = np.argwhere(values[:, :, 64:] > 300).mean(axis=0) + (0, 0, 64)  # vertebrae on the medial side
    assert spine[1] > liver[1] + 20  # the spine is posterior (+y in LPS)
    assert spine[2] > liver[2] + 20  # and to the patient's left of the liver (+x in LPS)
    area = (labels >= 1).sum(axis=(1, 2))
    assert area[-40:].mean() > 1.5 * area[:40].mean()  # the right lobe tapers downwards: z grows upwards


# --- training ------------------------------------------------------------------------------------

def test_training_lowers_loss_writes_checkpoint_and_resumes(tmp_path):
    image, label = _phantom()
    volumes = [("phantom", image, label)]
    out = tmp_path / "run"
    history = train_segmentation(volumes, out, val_volumes=volumes, epochs=3, config=TINY,
                                 iterations_per_epoch=12, progress=False, seed=3)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]
    assert set(history[-1]["val_dice"]["phantom"]) == {"liver", "tumour"}
    for folder in ("checkpoint", "best"):
        assert {p.name for p in (out / folder).iterdir()} == {"weights.npz", "model.json"}
    network, config, meta = load_segmentation_weights(out / "best")
    assert config == TINY and meta["training"]["seed"] == 3

    resumed = train_segmentation(volumes, out, val_volumes=volumes, epochs=4, iterations_per_epoch=12,
                                 progress=False, seed=3, resume=True)
    assert resumed[:3] == history and resumed[3]["epoch"] == 4
    checkpoint = json.loads((out / "checkpoint" / "model.json").read_text())
    assert checkpoint["epoch"] == 4 and len(checkpoint["history"]) == 4

    with pytest.raises(DelicaiteError, match="seed"):
        train_segmentation(volumes, out, epochs=5, progress=False, seed=4, resume=True)
    with pytest.raises(DelicaiteError, match="nothing to resume"):
        train_segmentation(volumes, tmp_path / "fresh", epochs=1, progress=False, resume=True)


def test_contrast_lumens_are_painted_into_the_background_only():
    from DELICAITELib.segmentation.augment import LUMEN_VALUE, RandContrastLumensd

    rng = np.random.default_rng(0)
    image = np.full((1, 40, 48, 48), 0.05, np.float32)  # air
    image[:, :, 8:40, 8:40] = 0.5 + rng.normal(0, 0.02, (40, 32, 32))  # soft tissue
    label = np.zeros_like(image, np.uint8)
    label[:, 10:30, 12:28, 12:28] = 1
    label[:, 16:22, 16:22, 16:22] = 2
    paint = RandContrastLumensd(prob=1.0)
    paint.set_random_state(seed=3)
    changed_any = False
    for _ in range(5):
        out = paint({"image": torch.from_numpy(image.copy()), "label": label})
        values = out["image"].numpy()
        changed = values != image
        changed_any |= bool(changed.any())
        assert not changed[label >= 1].any()  # never over the liver or tumour
        centres_in_tissue = changed & (image > 0.3)
        assert not changed.any() or centres_in_tissue.any()  # each lumen is centred in soft tissue
        assert np.all((values[changed] >= LUMEN_VALUE[0]) & (values[changed] <= LUMEN_VALUE[1]))
        assert out["label"] is label  # the label is not touched: a lumen is background
    assert changed_any
    unchanged = RandContrastLumensd(prob=0.0)({"image": torch.from_numpy(image.copy()), "label": label})
    assert np.array_equal(unchanged["image"].numpy(), image)


def test_config_round_trip_and_network_shape():
    config = SegmentationConfig()
    assert SegmentationConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ModelFileError, match="unknown settings"):
        SegmentationConfig.from_dict({**config.to_dict(), "attention": True})
    with pytest.raises(ValueError, match="divisible"):
        SegmentationConfig(patch_size=(90, 96, 64))
    with torch.no_grad():
        out = build_network(TINY)(torch.zeros(1, 1, *TINY.patch_zyx))
    assert out.shape == (1, 3, *TINY.patch_zyx)


# --- shipped weights -----------------------------------------------------------------------------

def test_shipped_weights_load_and_corrupt_copy_is_refused(tmp_path):
    network, config, meta = load_segmentation_weights()
    assert config == SegmentationConfig() and meta["classes"] == ["background", "liver", "tumour"]
    assert (SHIPPED_WEIGHTS / "weights.npz").stat().st_size <= 20 * 1024 * 1024
    copy = tmp_path / "weights"
    shutil.copytree(SHIPPED_WEIGHTS, copy, ignore=shutil.ignore_patterns("*.md"))
    data = bytearray((copy / "weights.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_segmentation_weights(copy)
    with pytest.raises(ModelFileError, match="does not exist"):
        segment(_phantom()[0], weights=tmp_path / "missing")


# --- inference -----------------------------------------------------------------------------------

def _shrink_pair(image, label, factors=(2, 2, 1)):
    small = sitk.Shrink(sitk.SmoothingRecursiveGaussian(image, [0.5 * s for s in image.GetSpacing()]), factors)
    return small, sitk.Resample(label, small, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


def _dice(a, b):
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_air_padding_is_never_liver(ircadb17_image, ircadb17_label):
    """IRCADb-17 with 200 slices of air below it (padding, or a field of view that reaches far): the
    network once called whole patches of constant air liver (instance normalisation leaves them blank);
    now every liver voxel stays in the scanned slices and the liver is the expert's."""
    padded = sitk.ConstantPad(ircadb17_image, (0, 0, 200), (0, 0, 0), -1024.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the withheld tumour
        raw = sitk.GetArrayFromImage(segment(padded, device="cpu", postprocess=False))  # 1.8 L of "liver" in the air before
        label = sitk.GetArrayFromImage(segment(padded, device="cpu"))
    assert not raw[:200].any() and not label[:200].any()
    assert _dice(label[200:] >= 1, sitk.GetArrayViewFromImage(ircadb17_label) >= 1) > 0.9


def test_segment_ircadb17_on_its_own_grid(ircadb17_image, ircadb17_label):
    image, reference = _shrink_pair(ircadb17_image, ircadb17_label)  # 256×256×119: same anatomy, faster
    steps = []
    label = segment(image, device="cpu", progress=steps.append)
    assert label.GetSize() == image.GetSize() and label.GetPixelID() == sitk.sitkUInt8
    assert np.allclose(label.GetOrigin(), image.GetOrigin()) and label.GetSpacing() == image.GetSpacing()
    predicted, truth = sitk.GetArrayViewFromImage(label), sitk.GetArrayViewFromImage(reference)
    assert set(np.unique(predicted)) <= {0, 1, 2}
    assert _dice(predicted >= 1, truth >= 1) > 0.85
    assert len(steps) >= 3
    raw = segment(image, device="cpu", postprocess=False)
    assert _dice(sitk.GetArrayViewFromImage(raw) >= 1, truth >= 1) > 0.8


def test_non_ct_volume_is_refused():
    values = np.random.default_rng(0).uniform(0, 800, (20, 40, 40)).astype(np.float32)  # MR-like, no air
    with pytest.raises(ImageError, match="does not look like CT"):
        segment(sitk.GetImageFromArray(values))


def _head(spacing=(1.0, 1.0, 2.0)) -> sitk.Image:
    """Head-like CT: air, a skull ring (bone, ~1000 HU) around brain (~35 HU), no liver."""
    rng = np.random.default_rng(1)
    z, y, x = np.mgrid[:50, :180, :160]
    r = np.sqrt(((y - 90) / 85) ** 2 + ((x - 80) / 70) ** 2 + ((z - 25) / 60) ** 2)
    values = np.full(z.shape, -1000.0, np.float32)
    values[r < 1.0] = 1000.0
    values[r < 0.9] = 35.0
    values += rng.normal(0, 8, values.shape).astype(np.float32)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing)
    return image


def test_head_without_liver_warns():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        label = segment(_head(), device="cpu")
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("no liver found in the field of view") for m in messages), messages
    liver_ml = np.count_nonzero(sitk.GetArrayViewFromImage(label)) * np.prod(label.GetSpacing()) / 1000
    assert liver_ml < MIN_LIVER_ML


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(DelicaiteError, match="no CUDA GPU") as info:
        segment(_phantom()[0], device="cuda")
    assert "\n" not in str(info.value)
    with pytest.raises(DelicaiteError, match="unknown device"):
        segment(_phantom()[0], device="tpu")
