"""Post-processing, correction helpers, segmentation metrics and the TotalSegmentator backend.

Synthetic label maps use an anisotropic spacing (0.7 × 1.2 × 2.5 mm, x × y × z) so that every size in
mm is checked against its voxel count per axis. Arrays are indexed [z, y, x] as SimpleITK returns them.
"""

import json
import os
import stat
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from conftest import shared_path
from DELICAITELib.errors import DelicaiteError, ImageError, MaskError
from DELICAITELib.io import read_image
from DELICAITELib.segmentation import corrections as C
from DELICAITELib.segmentation.metrics import evaluate_files, evaluate_segmentation, hd95_mm
from DELICAITELib.segmentation.postprocess import postprocess
from DELICAITELib.segmentation.totalsegmentator import (
    NOT_INSTALLED,
    import_totalsegmentator,
    run_totalsegmentator,
)

SPACING = (0.7, 1.2, 2.5)  # x, y, z in mm
VOXEL_ML = 0.7 * 1.2 * 2.5 / 1000.0
ORIGIN = (-12.0, 30.0, 100.0)


def image_of(array, spacing=SPACING, origin=ORIGIN, direction=None, dtype=np.uint8):
    image = sitk.GetImageFromArray(np.asarray(array, dtype=dtype))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


def arr(image):
    return sitk.GetArrayFromImage(image)


def count(image, value=None):
    a = arr(image)
    return int(np.count_nonzero(a >= 1 if value is None else a == value))


def two_livers():
    """A 10×20×20 liver (4000 voxels) with an enclosed 18-voxel hole and an 18-voxel tumour, and a
    144-voxel liver island holding an 8-voxel tumour."""
    a = np.zeros((12, 40, 40), np.uint8)
    a[1:11, 2:22, 2:22] = 1
    a[5:7, 10:13, 10:13] = 0  # enclosed hole
    a[3:5, 5:8, 5:8] = 2  # tumour in the big liver
    a[2:6, 28:34, 28:34] = 1  # island
    a[3:5, 30:32, 30:32] = 2  # tumour in the island
    return a


def flip_y_header(image):
    """The same voxels in physical space, stored with the y axis reversed (header and array both flipped)."""
    flipped = sitk.GetImageFromArray(sitk.GetArrayFromImage(image)[:, ::-1, :].copy())
    flipped.SetSpacing(image.GetSpacing())
    flipped.SetOrigin(image.TransformIndexToPhysicalPoint((0, image.GetSize()[1] - 1, 0)))
    d = np.array(image.GetDirection()).reshape(3, 3)
    d[:, 1] *= -1
    flipped.SetDirection(d.ravel().tolist())
    return flipped


def assert_one_line(error, *fragments):
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# --- post-processing ------------------------------------------------------------------------------


def test_postprocess_keeps_largest_liver_fills_holes_and_drops_outside_tumour():
    a = two_livers()
    a[:, 15:17, 15:17] = np.where(a[:, 15:17, 15:17] == 1, 0, a[:, 15:17, 15:17])  # a vessel channel open in z
    label = image_of(a)
    out = postprocess(label)
    assert out.GetPixelID() == sitk.sitkUInt8
    assert out.GetSize() == label.GetSize() and out.GetSpacing() == label.GetSpacing()
    assert out.GetOrigin() == label.GetOrigin()
    o = arr(out)
    assert np.count_nonzero(o[:, 26:, 26:]) == 0  # island and its tumour gone
    assert np.count_nonzero(o >= 1) == 4000  # the whole box: hole and channel filled
    assert np.count_nonzero(o == 2) == 18  # tumour kept, as tumour
    assert np.all(o[5:7, 10:13, 10:13] == 1) and np.all(o[:, 15:17, 15:17][1:11] == 1)  # filled as parenchyma
    assert np.array_equal(arr(label), a)  # input untouched


def test_postprocess_of_empty_label_is_empty():
    out = postprocess(image_of(np.zeros((4, 5, 6))))
    assert count(out) == 0


def test_postprocess_leaves_the_ircadb17_expert_mask_essentially_unchanged(ircadb17_label):
    out = postprocess(ircadb17_label)
    scores = evaluate_segmentation(out, ircadb17_label)
    assert scores["liver"]["dice"] > 0.99
    assert scores["tumour"]["dice"] == 1.0  # all tumour lies in the one liver
    assert abs(scores["liver"]["volume_error_percent"]) < 1.0


def test_postprocess_with_the_ct_keeps_the_expert_liver_and_cuts_a_contrast_lumen(ircadb17_image, ircadb17_label):
    """IRCADb-17's expert liver has no bright lumen to cut: Dice stays > 0.99 with the CT given. A 30 mL
    350 HU ball painted into the CT inside the liver (a stomach with oral contrast the mask took in) is cut
    out with its wall, and nothing far from it changes."""
    unchanged = evaluate_segmentation(postprocess(ircadb17_label, ircadb17_image), ircadb17_label)
    assert unchanged["liver"]["dice"] > 0.99
    ct = sitk.GetArrayFromImage(ircadb17_image)
    liver = sitk.GetArrayViewFromImage(ircadb17_label) >= 1
    centre = [int(round(c)) for c in np.argwhere(liver).mean(axis=0)]
    spacing = np.array(ircadb17_image.GetSpacing()[::-1])
    grid = np.ogrid[tuple(slice(0, n) for n in ct.shape)]
    distance = np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing)))
    ct[distance < 19.3] = 350.0  # 30 mL
    painted = sitk.GetImageFromArray(ct)
    painted.CopyInformation(ircadb17_image)
    cut = sitk.GetArrayFromImage(postprocess(ircadb17_label, painted)) >= 1
    assert not cut[distance < 19.3].any() and not cut[distance < 19.3 + 3.0].any()
    far = liver & (distance > 40)
    assert np.array_equal(cut[far], liver[far])


# --- corrections ----------------------------------------------------------------------------------


def test_keep_largest_island_liver_and_tumour():
    label = image_of(two_livers())
    liver = C.keep_largest_island(label, "liver")
    assert count(liver) == 4000 - 18 and count(liver, 2) == 18  # island (144 voxels) gone with its tumour
    assert count(liver) * VOXEL_ML == pytest.approx(3982 * 0.0021)

    a = two_livers()
    a[7:9, 15:18, 15:17] = 2  # a second, smaller tumour (12 voxels)
    label = image_of(a)
    tumour = C.keep_largest_island(label, "tumour")
    assert count(tumour, 2) == 18  # only the largest tumour
    assert count(tumour) == count(label)  # removed tumour stays liver
    assert np.all(arr(tumour)[7:9, 15:18, 15:17] == 1)
    assert np.array_equal(arr(label), a)


def test_fill_holes_liver_tumour_and_slice_wise():
    a = two_livers()
    a[2:5, 14:17, 14:17] = 2  # a tumour with a liver voxel in its centre (enclosed in 3-D)
    a[3, 15, 15] = 1
    a[:, 18:20, 18:20] = np.where(a[:, 18:20, 18:20] == 1, 0, a[:, 18:20, 18:20])  # channel open in z
    label = image_of(a)
    filled = C.fill_holes(label, "liver")
    assert count(filled) == count(label) + 18 + 40  # enclosed hole + the channel through 10 slices
    only_3d = C.fill_holes(label, "liver", slice_wise=False)
    assert count(only_3d) == count(label) + 18  # the channel is open at both ends in 3-D
    tumour = C.fill_holes(label, "tumour")
    assert count(tumour, 2) == count(label, 2) + 1 and arr(tumour)[3, 15, 15] == 2
    assert count(tumour) == count(label)


def test_radius_in_voxels_uses_the_spacing_of_each_axis():
    label = image_of(np.zeros((3, 3, 3)))
    assert C.radius_in_voxels(label, 2.0) == [3, 2, 1]  # 2/0.7, 2/1.2, 2/2.5 rounded
    with pytest.raises(MaskError) as error:
        C.smooth(label, radius_mm=0.2)
    assert_one_line(error, "radius 0.2 mm", "larger radius")
    with pytest.raises(MaskError) as error:
        C.smooth(label, method="gaussian")
    assert_one_line(error, "gaussian", "closing")
    with pytest.raises(MaskError) as error:
        C.smooth(label, structure="spleen")
    assert_one_line(error, "spleen", "liver")


def test_smooth_closing_closes_gaps_narrower_than_the_radius_in_mm():
    # Two slots 5 voxels wide, cut into the liver from one face: 3.5 mm across x, 6.0 mm across y.
    # A 2 mm radius is 3 voxels along x and 2 along y: the closing bridges 6 voxels (4.2 mm) across x
    # but only 4 (4.8 mm) across y, so the same voxel count is closed along x and left open along y.
    a = np.zeros((12, 44, 44), np.uint8)
    a[2:10, 5:35, 5:35] = 1
    a[3:9, 5:20, 12:17] = 0  # slot across x, open at y = 5
    a[3:9, 22:27, 20:35] = 0  # slot across y, open at x = 35
    label = image_of(a)
    closed = arr(C.smooth(label, "liver", "closing", radius_mm=2.0))
    box = np.zeros_like(a)
    box[2:10, 5:35, 5:35] = 1
    assert np.all(closed[box == 0] == 0)  # closing never leaves the box around the liver
    assert np.all(closed[3:9, 8:20, 12:17] == 1)  # the 3.5 mm slot is closed (but at its mouth)
    assert np.count_nonzero(closed[4:8, 23:26, 20:32]) == 0  # the 6 mm slot is not (only its corners round)
    assert np.array_equal(closed[box == 1] | (a[box == 1] == 0), np.ones(box.sum(), bool))  # nothing removed


def test_smooth_median_and_tumour_stays_inside_the_liver():
    a = np.zeros((12, 30, 30), np.uint8)
    a[2:10, 5:25, 5:25] = 1
    a[6, 15, 15] = 0  # a pin-hole
    a[6, 15, 28] = 1  # a speck
    label = image_of(a)
    median = arr(C.smooth(label, "liver", "median", radius_mm=1.3))  # radius [2, 1, 1]
    assert median[6, 15, 15] == 1 and median[6, 15, 28] == 0
    assert abs(np.count_nonzero(median) - 8 * 20 * 20) < 0.1 * 8 * 20 * 20

    b = np.zeros((12, 30, 30), np.uint8)
    b[2:10, 5:25, 5:25] = 1
    b[3:9, 5:12, 10:20] = 2  # tumour on the liver edge (y = 5)
    b[3:9, 8, 10:20] = 1  # with a 1-voxel cleft
    label = image_of(b)
    out = arr(C.smooth(label, "tumour", "closing", radius_mm=2.0))
    assert np.array_equal(out >= 1, b >= 1)  # the liver is unchanged
    assert np.all(out[3:9, 8, 10:20] == 2)  # the cleft is closed


def test_restrict_tumour_to_liver():
    a = two_livers()
    a[8:10, 30:33, 30:33] = 2  # tumour not attached to the big liver (its own island)
    label = image_of(a)
    out = arr(C.restrict_tumour_to_liver(label))
    assert np.count_nonzero(out[:, 26:, 26:] == 2) == 0  # tumour outside the main liver removed...
    assert np.count_nonzero(out[:, 26:, 26:] == 1) == 144 - 8  # ...the island's parenchyma kept
    assert np.count_nonzero(out == 2) == 18

    liver = np.zeros_like(a)
    liver[1:11, 2:22, 2:7] = 1  # a separate liver mask cutting the tumour (x 5..7) in half
    out = arr(C.restrict_tumour_to_liver(label, liver=image_of(liver)))
    assert np.count_nonzero(out == 2) == 2 * 3 * 2
    with pytest.raises(MaskError) as error:
        C.restrict_tumour_to_liver(label, liver=image_of(liver, spacing=(1, 1, 1)))
    assert_one_line(error, "not on the grid")


def test_remove_component_at_point_in_lps_mm_or_index():
    a = two_livers()
    # y axis pointing anterior (flipped): the index of a point depends on the direction, not only the spacing.
    label = image_of(a, direction=(1, 0, 0, 0, -1, 0, 0, 0, 1))
    point = label.TransformIndexToPhysicalPoint((30, 29, 2))  # x, y, z of an island voxel (parenchyma)
    out = C.remove_component_at(label, point, "liver")
    assert count(out) == count(label) - 144
    assert np.array_equal(arr(out)[:, :26, :26], a[:, :26, :26])
    out = C.remove_component_at(label, structure="tumour", index=(6, 6, 3))
    assert count(out, 2) == 8 and count(out) == count(label)  # tumour became parenchyma

    with pytest.raises(MaskError) as error:
        C.remove_component_at(label, label.TransformIndexToPhysicalPoint((38, 38, 0)), "liver")
    assert_one_line(error, "no liver at", "label 0", "click inside")
    with pytest.raises(MaskError) as error:
        C.remove_component_at(label, (1000.0, 0.0, 0.0))
    assert_one_line(error, "outside the image", "1000.0")
    with pytest.raises(MaskError) as error:
        C.remove_component_at(label, point, structure="tumour")
    assert_one_line(error, "no tumour at", "label 1")
    with pytest.raises(MaskError) as error:
        C.remove_component_at(label, point, index=(1, 2, 3))
    assert_one_line(error, "either a point")


def ct_with_blobs(noise=8.0, seed=0):
    """A synthetic CT (air, a 100 HU liver box, a 40 HU bowel slab touching it) with a dark 8 mm tumour
    on the liver's edge at the bowel and a bright 6 mm nodule, and its liver-only label map."""
    size = (64, 52, 26)  # x, y, z voxels: 44.8 × 62.4 × 65 mm
    z, y, x = np.meshgrid(*(s * np.arange(n) for s, n in zip(SPACING[::-1], size[::-1])), indexing="ij")
    ct = np.full(x.shape, -1000.0)
    liver = (x >= 4) & (x < 40) & (y >= 4) & (y < 58) & (z >= 5) & (z < 60)
    ct[liver] = 100.0
    ct[(x >= 40) & (x < 44) & (y >= 4) & (y < 58) & (z >= 5) & (z < 60)] = 40.0  # bowel, outside the liver
    dark_centre, bright_centre = (34.0, 20.0, 30.0), (15.0, 42.0, 30.0)  # x, y, z mm (local)
    dark = (x - dark_centre[0]) ** 2 + (y - dark_centre[1]) ** 2 + (z - dark_centre[2]) ** 2 <= 8.0**2
    bright = (x - bright_centre[0]) ** 2 + (y - bright_centre[1]) ** 2 + (z - bright_centre[2]) ** 2 <= 6.0**2
    ct[dark & liver] = 40.0
    ct[bright] = 200.0
    ct += np.random.default_rng(seed).normal(0.0, noise, ct.shape)
    image = image_of(ct, dtype=np.float32)
    label = image_of(liver.astype(np.uint8))
    to_lps = lambda c: tuple(o + v for o, v in zip(ORIGIN, c))  # noqa: E731 (identity direction)
    return image, label, to_lps(dark_centre), to_lps(bright_centre), dark & liver, bright


@pytest.mark.parametrize("method", ["confidence", "connected"])
def test_grow_tumour_from_seed_finds_dark_and_bright_blobs_inside_the_liver_only(method):
    image, label, dark_seed, bright_seed, dark, bright = ct_with_blobs()
    out = C.grow_tumour_from_seed(image, label, dark_seed, method=method)
    tumour = arr(out) == 2
    # The 8 mm sphere is cut by the liver edge at x = 40 mm; the bowel beside it has the same HU.
    assert 2 * np.count_nonzero(tumour & dark) / (tumour.sum() + dark.sum()) > 0.9
    assert np.count_nonzero(tumour & ~(arr(label) == 1)) == 0  # never outside the liver
    assert np.array_equal(arr(out) >= 1, arr(label) >= 1)  # the liver itself is unchanged
    assert tumour.sum() * VOXEL_ML == pytest.approx(dark.sum() * VOXEL_ML, rel=0.1)

    out = C.grow_tumour_from_seed(image, out, bright_seed, method=method)
    grown = arr(out) == 2
    assert 2 * np.count_nonzero(grown & bright) / (np.count_nonzero(grown & ~tumour) + bright.sum()) > 0.9
    assert np.array_equal(grown & tumour, tumour)  # the first tumour is kept
    # 4/3 π (6 mm)³ = 0.905 mL of the bright nodule, within the discretisation of 0.7 × 1.2 × 2.5 mm voxels
    assert np.count_nonzero(grown & ~tumour) * VOXEL_ML == pytest.approx(4 / 3 * np.pi * 6.0**3 / 1000, rel=0.15)


def test_grow_tumour_from_seed_bad_seeds_and_grids():
    image, label, dark_seed, _, _, _ = ct_with_blobs(noise=0.0)
    with pytest.raises(MaskError) as error:
        C.grow_tumour_from_seed(image, label, (500.0, 0.0, 0.0))
    assert_one_line(error, "outside the image", "LPS")
    with pytest.raises(MaskError) as error:
        C.grow_tumour_from_seed(image, label, seed_index=(62, 1, 1))
    assert_one_line(error, "outside the liver", "place the seed")
    with pytest.raises(ImageError) as error:
        C.grow_tumour_from_seed(image_of(arr(image), spacing=(1, 1, 1), dtype=np.float32), label, dark_seed)
    assert_one_line(error, "different grids")
    with pytest.raises(MaskError) as error:
        C.grow_tumour_from_seed(image, label, dark_seed, method="connected", lower=500, upper=600)
    assert_one_line(error, "found no voxel")
    with pytest.warns(UserWarning, match="leaked"):
        C.grow_tumour_from_seed(image, label, dark_seed, method="connected", lower=0, upper=300)


# --- metrics --------------------------------------------------------------------------------------


def cube(shape, start, size):
    a = np.zeros(shape, np.uint8)
    a[tuple(slice(s, s + n) for s, n in zip(start, size))] = 1
    return a


@pytest.mark.parametrize(
    "axis, shift, expected_mm",
    [(0, 2, 2 * 2.5), (2, 3, 3 * 0.7)],  # z by 2 slices (5 mm), x by 3 columns (2.1 mm)
)
def test_offset_cubes_have_known_dice_and_hd95(axis, shift, expected_mm):
    # Cubes large across the shift so that the faces moved by the shift hold > 5% of the surface:
    # their voxels are exactly `shift` voxels from the other surface, the maximum, so HD95 = shift in mm.
    size = {0: (6, 16, 16), 2: (12, 12, 8)}[axis]
    start = np.array((2, 2, 2))
    moved = start.copy()
    moved[axis] += shift
    shape = (14, 22, 22)
    ref, pred = cube(shape, start, size), cube(shape, moved, size)
    scores = evaluate_segmentation(image_of(pred), image_of(ref))
    liver = scores["liver"]
    assert liver["dice"] == pytest.approx((size[axis] - shift) / size[axis])
    assert liver["hd95_mm"] == pytest.approx(expected_mm)
    assert liver["volume_error_ml"] == pytest.approx(0.0) and liver["volume_error_percent"] == 0.0
    assert liver["volume_ref_ml"] == pytest.approx(np.prod(size) * VOXEL_ML)
    assert scores["tumour"] == {
        "dice": 1.0, "hd95_mm": 0.0, "volume_pred_ml": 0.0, "volume_ref_ml": 0.0, "volume_error_ml": 0.0,
        "volume_error_percent": None, "note": "empty in both prediction and reference: dice 1 and hd95 0 by convention",
    }


def test_volume_errors_and_identical_masks():
    ref = cube((10, 16, 16), (2, 3, 3), (4, 10, 10))  # 400 voxels = 0.84 mL
    pred = cube((10, 16, 16), (2, 3, 3), (5, 10, 10))  # 500 voxels = 1.05 mL
    pred[3, 5, 5] = 2
    ref[3, 5, 5] = 2
    scores = evaluate_segmentation(image_of(pred), image_of(ref))
    assert scores["liver"]["volume_ref_ml"] == pytest.approx(0.84)
    assert scores["liver"]["volume_pred_ml"] == pytest.approx(1.05)
    assert scores["liver"]["volume_error_ml"] == pytest.approx(0.21)
    assert scores["liver"]["volume_error_percent"] == pytest.approx(25.0)
    assert scores["liver"]["dice"] == pytest.approx(2 * 400 / 900)
    assert scores["liver"]["hd95_mm"] == pytest.approx(2.5)  # the extra slice

    same = evaluate_segmentation(image_of(ref), image_of(ref))
    for structure in ("liver", "tumour"):
        assert same[structure]["dice"] == 1.0 and same[structure]["hd95_mm"] == 0.0
        assert same[structure]["volume_error_ml"] == 0.0 and same[structure]["note"] is None


def test_empty_in_one_gives_dice_0_and_null_hd95():
    ref = cube((6, 8, 8), (1, 1, 1), (3, 4, 4))
    pred = ref.copy()
    pred[2, 2, 2] = 2
    scores = evaluate_segmentation(image_of(pred), image_of(ref))
    assert scores["tumour"]["dice"] == 0.0 and scores["tumour"]["hd95_mm"] is None
    assert "reference only" in scores["tumour"]["note"]
    assert scores["tumour"]["volume_error_percent"] is None
    assert '"hd95_mm": null' in json.dumps(scores)
    scores = evaluate_segmentation(image_of(ref), image_of(pred))
    assert "prediction only" in scores["tumour"]["note"] and scores["tumour"]["hd95_mm"] is None


def independent_hd95(a, b, spacing_zyx):
    """HD95 from scipy alone: surface = voxels with a face neighbour outside (border counts as outside)."""
    def surface(m):
        return m & ~ndimage.binary_erosion(m, border_value=0)

    sa, sb = surface(a), surface(b)
    to_b = ndimage.distance_transform_edt(~sb, sampling=spacing_zyx)[sa]
    to_a = ndimage.distance_transform_edt(~sa, sampling=spacing_zyx)[sb]
    return max(np.percentile(to_b, 95), np.percentile(to_a, 95))


def test_hd95_agrees_with_an_independent_scipy_computation():
    rng = np.random.default_rng(3)
    for _ in range(3):
        a = ndimage.binary_opening(rng.random((10, 24, 24)) > 0.5)
        b = ndimage.binary_opening(rng.random((10, 24, 24)) > 0.45)
        expected = independent_hd95(a, b, SPACING[::-1])
        assert hd95_mm(image_of(a), image_of(b)) == pytest.approx(expected, rel=1e-5)


def test_prediction_on_another_grid_is_resampled_in_physical_space(tmp_path):
    a = two_livers()
    ref = image_of(a)
    flipped = flip_y_header(ref)
    assert not np.array_equal(arr(flipped), a)
    scores = evaluate_segmentation(flipped, ref)
    assert scores["prediction_resampled"] is True
    assert scores["liver"]["dice"] == 1.0 and scores["tumour"]["dice"] == 1.0

    sitk.WriteImage(flipped, str(tmp_path / "pred.nii.gz"))
    sitk.WriteImage(ref, str(tmp_path / "ref.nrrd"))
    result = evaluate_files(tmp_path / "pred.nii.gz", tmp_path / "ref.nrrd")
    assert result["liver"]["dice"] == pytest.approx(1.0) and result["reference"].endswith("ref.nrrd")
    json.dumps(result)
    far = image_of(a, origin=(1000.0, 0.0, 0.0))
    with pytest.raises(MaskError) as error:
        evaluate_segmentation(far, ref)
    assert_one_line(error, "does not overlap")


# --- TotalSegmentator ------------------------------------------------------------------------------


def _liver_stats(label, ct):
    liver = arr(label) == 1
    hu = arr(ct)[liver]
    volume_ml = liver.sum() * np.prod(ct.GetSpacing()) / 1000.0
    return liver, hu, volume_ml


def test_import_totalsegmentator_flipped_dicom_result_lands_on_the_liver():
    folder = shared_path("totalseg-example")
    ct = read_image(folder / "example_ct_dicom")
    label = import_totalsegmentator(folder / "example_seg_dicom.nii.gz", ct)
    assert label.GetSize() == ct.GetSize() and label.GetOrigin() == ct.GetOrigin()
    assert label.GetDirection() == ct.GetDirection()
    liver, hu, volume_ml = _liver_stats(label, ct)
    print(f"TotalSegmentator liver on example_ct_dicom: {volume_ml:.0f} mL in {ct.GetSize()[2]} slices")
    assert 300 < volume_ml < 1200  # 20 slices × 2 mm through the liver
    assert np.mean((hu > 40) & (hu < 200)) > 0.9  # contrast-enhanced liver
    # The same voxels copied array to array (ignoring the flipped y axis) miss the liver.
    naive = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_seg_dicom.nii.gz"))) == 5
    naive_hu = arr(ct)[naive]
    assert np.mean((naive_hu > 40) & (naive_hu < 200)) < 0.75
    assert 2 * np.count_nonzero(naive & liver) / (naive.sum() + liver.sum()) < 0.8


def test_import_totalsegmentator_on_the_same_grid_and_bad_inputs(tmp_path):
    folder = shared_path("totalseg-example")
    ct = read_image(folder / "example_ct_sm.nii.gz")
    seg = sitk.ReadImage(str(folder / "example_seg.nii.gz"))
    label = import_totalsegmentator(seg, ct)
    assert np.array_equal(arr(label) == 1, arr(seg) == 5)  # same grid: voxel for voxel
    _, hu, volume_ml = _liver_stats(label, ct)
    print(f"TotalSegmentator liver on example_ct_sm: {volume_ml:.0f} mL")
    assert 500 < volume_ml < 2000
    assert 20 < np.median(hu) < 200 and np.mean((hu > 0) & (hu < 200)) > 0.9  # unenhanced liver ~50 HU

    binary = sitk.Cast(seg == 5, sitk.sitkUInt8)  # TotalSegmentator's folder output: liver.nii.gz
    sitk.WriteImage(binary, str(tmp_path / "liver.nii.gz"))
    assert np.array_equal(arr(import_totalsegmentator(tmp_path, ct)), arr(label))

    no_liver = sitk.Mask(seg, seg != 5)
    with pytest.raises(MaskError) as error:
        import_totalsegmentator(no_liver, ct)
    assert_one_line(error, "no liver (label 5)")
    elsewhere = sitk.Image(seg)
    elsewhere.SetOrigin((5000.0, 0.0, 0.0))
    with pytest.raises(MaskError) as error:
        import_totalsegmentator(elsewhere, ct)
    assert_one_line(error, "does not overlap")


def small_ct_file(tmp_path):
    """A tiny CT on disk: air around a 100 HU 'liver' and a 300 HU 'bone', and the liver's voxel mask."""
    a = np.full((8, 24, 20), -1000.0, np.float32)
    a[2:6, 4:14, 3:12] = 100.0
    a[2:6, 16:20, 14:18] = 300.0
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(image_of(a, dtype=np.float32), str(path))
    return path, a == 100.0


FAKE_TOTALSEGMENTATOR = """\
#!{python}
# A stand-in for TotalSegmentator: records its arguments and writes a multi-label NIfTI (liver = 5,
# another organ = 6) with its y axis flipped, as TotalSegmentator's DICOM conversion may do.
import json, os, sys
import SimpleITK as sitk
args = sys.argv[1:]
with open(os.environ["FAKE_TS_ARGS"], "w") as f:
    json.dump(args, f)
if os.environ.get("FAKE_TS_FAIL"):
    print("RuntimeError: CUDA out of memory", file=sys.stderr)
    sys.exit(1)
ct = sitk.ReadImage(args[args.index("-i") + 1])
if "--task" in args:  # liver_vessels: 2 tumour (half the liver, and the bone outside it), 1 vessels
    hu = sitk.GetArrayFromImage(ct)
    task = ((hu == 100) | (hu == 300)).astype("uint8") * 2
    task[:, :, 7:][hu[:, :, 7:] == 100] = 1
    seg = sitk.GetImageFromArray(task)
    seg.CopyInformation(ct)
else:
    seg = sitk.Cast(ct == 100, sitk.sitkUInt8) * 5 + sitk.Cast(ct == 300, sitk.sitkUInt8) * 6
flipped = sitk.GetImageFromArray(sitk.GetArrayFromImage(seg)[:, ::-1, :].copy())
flipped.SetSpacing(seg.GetSpacing())
flipped.SetOrigin(seg.TransformIndexToPhysicalPoint((0, seg.GetSize()[1] - 1, 0)))
flipped.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, 1))
sitk.WriteImage(flipped, args[args.index("-o") + 1])
"""


def install_fake_totalsegmentator(tmp_path, monkeypatch):
    """FAKE_TOTALSEGMENTATOR as the `TotalSegmentator` command on PATH; returns the file its arguments land in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "TotalSegmentator"
    fake.write_text(FAKE_TOTALSEGMENTATOR.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("FAKE_TS_ARGS", str(tmp_path / "args.json"))
    return tmp_path / "args.json"


def test_run_totalsegmentator_calls_the_command_on_path_and_imports_its_output(tmp_path, monkeypatch):
    ct_path, liver = small_ct_file(tmp_path)
    install_fake_totalsegmentator(tmp_path, monkeypatch)

    label = run_totalsegmentator(ct_path, tmp_path / "out", fast=True, device="cuda")
    args = json.loads((tmp_path / "args.json").read_text())
    assert args[args.index("-i") + 1] == str(ct_path)
    assert args[args.index("--roi_subset") + 1] == "liver" and args[args.index("--device") + 1] == "gpu"
    assert "--ml" in args and "--fast" in args
    assert np.array_equal(arr(label), liver.astype(np.uint8))  # the flip is undone; bone (6) is not liver

    reference = read_image(ct_path)
    label = run_totalsegmentator(ct_path, tmp_path / "out", fast=False, device="cpu", reference=reference)
    assert np.array_equal(arr(label), liver.astype(np.uint8))
    args = json.loads((tmp_path / "args.json").read_text())
    assert "--fast" not in args and args[args.index("--device") + 1] == "cpu"

    monkeypatch.setenv("FAKE_TS_FAIL", "1")
    with pytest.raises(DelicaiteError) as error:
        run_totalsegmentator(ct_path, tmp_path / "out")
    assert_one_line(error, "TotalSegmentator failed (exit 1)", "CUDA out of memory", "--roi_subset liver")


def test_run_totalsegmentator_says_how_to_install_it(tmp_path, monkeypatch):
    ct_path, _ = small_ct_file(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no TotalSegmentator command...
    monkeypatch.setitem(sys.modules, "totalsegmentator", None)  # ...and no importable package
    with pytest.raises(DelicaiteError) as error:
        run_totalsegmentator(ct_path, tmp_path / "out")
    assert str(error.value) == NOT_INSTALLED
    assert "pip install TotalSegmentator" in NOT_INSTALLED and "--backend delicaite" in NOT_INSTALLED
    with pytest.raises(DelicaiteError) as error:
        run_totalsegmentator(ct_path, tmp_path / "out", device="tpu")
    assert_one_line(error, "unknown device 'tpu'")
