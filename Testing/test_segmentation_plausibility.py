"""The plausibility gate on automatic liver masks: real CTs with expert or reference masks pass, and
masks that take in a contrast-filled lumen, sit in the pelvis, or come from a CT without lungs do not."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import shared_path
from DELICAITELib.cli import main
from DELICAITELib.demo import DEMO_CLINICAL, demo_model_dir
from DELICAITELib.io import read_image
from DELICAITELib.segmentation.plausibility import MaskReview, review_liver_mask, review_path

# slices 82-111 of example_ct.nii.gz are the grid of example_seg.nii.gz (its README); liver = label 5
TOTALSEG_SM_SLICES = slice(82, 112)
PELVIS_ONLY = slice(0, 40)


@pytest.fixture(scope="module")
def totalseg_whole():
    """The whole TotalSegmentator example CT and its liver (TotalSegmentator's own label) on that grid."""
    folder = shared_path("totalseg-example")
    image = read_image(folder / "example_ct.nii.gz")
    liver = np.zeros(image.GetSize()[::-1], np.uint8)
    liver[TOTALSEG_SM_SLICES] = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_seg.nii.gz"))) == 5
    return image, _label_like(liver, image)


def _label_like(array: np.ndarray, image: sitk.Image) -> sitk.Image:
    label = sitk.GetImageFromArray(array.astype(np.uint8))
    label.CopyInformation(image)
    return label


def test_expert_and_reference_livers_pass(ircadb17_image, ircadb17_label, totalseg_whole):
    for image, label in ((ircadb17_image, ircadb17_label), totalseg_whole):
        review = review_liver_mask(image, label)
        assert review.plausible, review.problems
        assert review.figures["lungs_in_view"] and review.figures["largest_bright_region_ml"] <= 10
        assert review.figures["liver_top_below_lung_base_mm"] < 0  # the dome rises above the lung bases
        assert review.figures["main_component_share"] == 1.0


def test_contrast_filled_lumen_inside_the_liver_is_caught(ircadb17_image, ircadb17_label):
    """A 60 mL ball at 350 HU (oral contrast in a stomach the mask took in) inside the expert liver."""
    ct = sitk.GetArrayFromImage(ircadb17_image)
    liver = sitk.GetArrayViewFromImage(ircadb17_label) >= 1
    depth = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        sitk.Cast(ircadb17_label >= 1, sitk.sitkUInt8), insideIsPositive=True, useImageSpacing=True))
    centre = np.unravel_index(int(np.argmax(np.where(liver, depth, -1e9))), depth.shape)
    spacing = np.array(ircadb17_image.GetSpacing()[::-1])
    grid = np.ogrid[tuple(slice(0, n) for n in ct.shape)]
    ball = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing)) < 24.3 ** 2  # r 24.3 mm: 60 mL
    ct[ball] = 350.0
    image = sitk.GetImageFromArray(ct)
    image.CopyInformation(ircadb17_image)
    review = review_liver_mask(image, ircadb17_label)
    assert not review.plausible
    assert review.figures["largest_bright_region_ml"] == pytest.approx(60, rel=0.1)
    assert "region above 200 HU inside it" in review.message() and "draw the liver" in review.message()


def test_a_mask_whose_top_lies_left_of_the_midline_is_caught(ircadb17_image, ircadb17_label):
    """The heart sits left of the midline above the liver: HCC_006's automatic mask took it in and its
    top 30 mm lay 83 % on the left. The expert liver mirrored left to right puts its dome there too."""
    review = review_liver_mask(ircadb17_image, ircadb17_label)
    assert review.plausible and review.figures["top_slab_left_share"] < 0.35
    expert = sitk.GetArrayFromImage(ircadb17_label)
    columns = np.flatnonzero(sitk.GetArrayViewFromImage(ircadb17_image).max(axis=(0, 1)) > -500)  # the body
    centre = (columns.min() + columns.max()) // 2
    mirrored = np.zeros_like(expert)
    width = min(centre, expert.shape[2] - 1 - centre)
    mirrored[:, :, centre - width:centre + width + 1] = expert[:, :, centre - width:centre + width + 1][:, :, ::-1]
    review = review_liver_mask(ircadb17_image, _label_like(mirrored, ircadb17_image))
    assert not review.plausible and review.figures["top_slab_left_share"] > 0.65
    assert any("left of the body's midline, where the heart sits" in p for p in review.problems)


def test_liver_in_the_pelvis_is_caught(totalseg_whole):
    image, liver = totalseg_whole
    moved = np.zeros_like(sitk.GetArrayViewFromImage(liver))
    moved[10:40] = sitk.GetArrayViewFromImage(liver)[TOTALSEG_SM_SLICES]  # the same liver, 216 mm lower
    review = review_liver_mask(image, _label_like(moved, image))
    assert not review.plausible
    assert review.figures["liver_top_below_lung_base_mm"] > 100
    assert any("below the lung bases" in p for p in review.problems)


def test_ct_without_lungs_cannot_confirm_a_liver(totalseg_whole):
    image, _ = totalseg_whole
    pelvis = image[:, :, PELVIS_ONLY]
    blob = np.zeros(pelvis.GetSize()[::-1], np.uint8)
    blob[5:35, 30:70, 30:70] = 1  # 1.4 L of "liver" in the middle of the pelvis
    review = review_liver_mask(pelvis, _label_like(blob, pelvis))
    assert not review.plausible and review.figures["lungs_in_view"] is False
    assert any("no lung base in the field of view" in p for p in review.problems)


def test_volume_and_pieces(ircadb17_image, ircadb17_label):
    liver = sitk.GetArrayFromImage(ircadb17_label) >= 1
    swollen = sitk.GetArrayFromImage(sitk.BinaryDilate(sitk.Cast(ircadb17_label >= 1, sitk.sitkUInt8), [26, 26, 12]))
    review = review_liver_mask(ircadb17_image, _label_like(swollen, ircadb17_image))
    assert review.figures["liver_ml"] > 4000 and any("more than any liver" in p for p in review.problems)
    pieces = liver.copy()
    z = np.flatnonzero(liver.any(axis=(1, 2)))
    pieces[(z[0] + z[-1]) // 2 - 6:(z[0] + z[-1]) // 2 + 6] = False  # cut through the middle: two halves
    review = review_liver_mask(ircadb17_image, _label_like(pieces, ircadb17_image))
    assert any("largest part holds only" in p for p in review.problems)


def test_review_file_round_trip(tmp_path):
    review = MaskReview(("a problem",), {"liver_ml": 1.0})
    path = review_path(tmp_path / "seg.nii.gz")
    assert path.name == "seg.review.json"
    path.write_text(json.dumps(review.to_dict()))
    assert MaskReview.read(path) == review
    assert MaskReview.read(tmp_path / "missing.review.json") is None


def test_case_on_a_pelvis_only_ct_is_refused(totalseg_whole, tmp_path, capsys):
    """The pelvis crop (no liver in it) used to get a HAIC recommendation with exit 0."""
    image, _ = totalseg_whole
    ct = tmp_path / "pelvis.nii.gz"
    sitk.WriteImage(image[:, :, PELVIS_ONLY], str(ct))
    clinical = tmp_path / "case.json"
    clinical.write_text(json.dumps(DEMO_CLINICAL))
    out = tmp_path / "case"
    status = main(["case", "--ap", str(ct), "--vp", str(ct), "--clinical", str(clinical), "--model",
                   str(demo_model_dir()), "--out", str(out), "--device", "cpu"])
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2
    assert "automatic liver mask is implausible" in last_line and "no lung base" in last_line
    assert not (out / "result.json").exists()
