"""The study's ROI pipeline: crop, window, resample, z-score, resize; and training augmentation."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from DELICAITELib.errors import MaskError
from DELICAITELib.io import Case
from DELICAITELib.preprocessing import (
    INPUT_SIZE,
    ROTATION_RANGE_DEG,
    TARGET_SPACING_MM,
    apply_window,
    preprocess_case,
    preprocess_slice,
    resample_in_plane,
    training_augmentation,
    window_bounds,
)
from DELICAITELib.slices import largest_tumour_slices

SPACING = (0.8, 0.8, 2.0)


def synthetic_pair(seed=0):
    """A 64×64×6 CT with textured HU in [−300, 400] and a label: liver block, tumour 20×12 px on slice 3."""
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(-300.0, 400.0, size=(6, 64, 64)).astype(np.float32)
    labels = np.zeros(pixels.shape, dtype=np.uint8)
    labels[:, 10:50, 10:50] = 1
    labels[3, 20:32, 15:35] = 2  # rows 20..31, columns 15..34
    labels[3, 20:23, 15:18] = 1  # a notch: the rectangle holds non-tumour pixels
    image, label = sitk.GetImageFromArray(pixels), sitk.GetImageFromArray(labels)
    for item in (image, label):
        item.SetSpacing(SPACING)
    return pixels, labels, image, label


def from_array(pixels):
    image = sitk.GetImageFromArray(pixels)
    image.SetSpacing(SPACING)
    return image


def test_ircadb17_slices_give_zscored_224_arrays(ircadb17_image, ircadb17_label):
    picked = largest_tumour_slices(ircadb17_label)
    case = Case(ap=ircadb17_image, vp=ircadb17_image, label=ircadb17_label)
    arrays = preprocess_case(case, picked)
    assert set(arrays) == {"AP", "VP"}
    for stack in arrays.values():
        assert stack.shape == (3, INPUT_SIZE, INPUT_SIZE) and stack.dtype == np.float32
        assert np.all(np.isfinite(stack))
        # z-scored before the (bilinear) resize, so close to but not exactly 0/1 afterwards
        assert np.allclose(stack.mean(axis=(1, 2)), 0.0, atol=0.02)
        assert np.allclose(stack.std(axis=(1, 2)), 1.0, atol=0.05)
    # Plain z indices work too and give the same arrays.
    again = preprocess_slice(ircadb17_image, ircadb17_label, picked[0].index)
    assert np.array_equal(again, arrays["AP"][0])


def test_window_clips_to_minus85_165():
    assert window_bounds(250, 40) == (-85.0, 165.0)
    hu = np.array([[[-1000.0, -85.0, 40.0, 165.0, 3000.0]]], np.float32)
    clipped = sitk.GetArrayFromImage(apply_window(from_array(hu)))
    assert clipped.tolist() == [[[-85.0, -85.0, 40.0, 165.0, 165.0]]]
    # Pushing HU already outside the window further out changes nothing; changes inside the window do.
    pixels, _, image, label = synthetic_pair()
    reference = preprocess_slice(image, label, 3)
    pushed = np.where(pixels < -85, -2000.0, np.where(pixels > 165, 2000.0, pixels)).astype(np.float32)
    assert np.allclose(preprocess_slice(from_array(pushed), label, 3), reference, atol=1e-5)
    inside = pixels.copy()
    inside[3, 25, 25] = 0.0 if abs(pixels[3, 25, 25]) > 50 else 150.0
    assert not np.allclose(preprocess_slice(from_array(inside), label, 3), reference, atol=1e-5)


def test_crop_uses_the_tumour_rectangle_and_mask_outside():
    pixels, labels, image, label = synthetic_pair()
    reference = preprocess_slice(image, label, 3)
    assert reference.shape == (INPUT_SIZE, INPUT_SIZE) and reference.dtype == np.float32
    # White-noise texture loses variance in the bilinear upsampling that follows the z-score: mean only.
    assert abs(reference.mean()) < 0.05
    # Pixels outside the rectangle (and on other slices) do not matter.
    outside = pixels.copy()
    outside[3, :20] = 100.0
    outside[3, :, 35:] = -50.0
    outside[2] = 0.0
    assert np.array_equal(preprocess_slice(from_array(outside), label, 3), reference)
    # Non-tumour pixels inside the rectangle matter, unless mask_outside sets them to the window minimum.
    notch = pixels.copy()
    notch[3, 20:23, 15:18] = 160.0
    assert not np.allclose(preprocess_slice(from_array(notch), label, 3), reference)
    masked = preprocess_slice(image, label, 3, mask_outside=True)
    assert np.array_equal(preprocess_slice(from_array(notch), label, 3, mask_outside=True), masked)
    with pytest.raises(MaskError, match="slice 2 has no tumour"):
        preprocess_slice(image, label, 2)


def test_in_plane_resampling_to_072_mm_keeps_the_rectangle():
    _, _, image, _ = synthetic_pair()
    roi = image[20:45, 10:22, 3]  # 25 × 12 pixels of 0.8 mm = 20 × 9.6 mm
    resampled = resample_in_plane(roi)
    assert resampled.GetSpacing() == (TARGET_SPACING_MM, TARGET_SPACING_MM)
    assert resampled.GetSize() == (28, 13)  # round(20 / 0.72), round(9.6 / 0.72)
    # Same outer edge: first pixel's corner stays where it was.
    corner = np.array(roi.GetOrigin()) - 0.4
    assert np.allclose(np.array(resampled.GetOrigin()) - TARGET_SPACING_MM / 2, corner)


def test_constant_roi_gives_zeros_not_nan():
    _, _, image, label = synthetic_pair()
    flat = from_array(np.full((6, 64, 64), 500.0, np.float32))  # all above the window
    out = preprocess_slice(flat, label, 3)
    assert np.all(out == 0.0)


def test_preprocess_case_needs_a_label():
    _, _, image, _ = synthetic_pair()
    with pytest.raises(MaskError, match="no label map"):
        preprocess_case(Case(ap=image, vp=image), [3])


def test_augmentation_keeps_shape_and_is_seeded():
    batch = np.random.default_rng(1).normal(size=(2, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    first = training_augmentation(seed=7)
    second = training_augmentation(seed=7)
    outputs = [first(batch) for _ in range(3)]
    assert all(isinstance(o, torch.Tensor) and o.shape == batch.shape and o.dtype == torch.float32 for o in outputs)
    assert all(torch.equal(a, second(batch)) for a in outputs)
    assert not torch.equal(outputs[0], outputs[1])  # a fresh draw each call
    assert not torch.equal(outputs[0], training_augmentation(seed=8)(batch))
    # Rotation angles are drawn uniformly within ±30°, both signs occur.
    augment = training_augmentation(seed=0)
    rotate = augment.transforms[2]
    angles = []
    for _ in range(40):
        augment(batch[:, :32, :32])
        angles.append(np.rad2deg(rotate.x))
    assert max(abs(a) for a in angles) <= ROTATION_RANGE_DEG and min(angles) < -10 and max(angles) > 10
