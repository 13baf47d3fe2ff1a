"""The axial slices with the largest tumour area."""

import warnings

import pytest
import SimpleITK as sitk

from DELICAITELib.errors import MaskError
from DELICAITELib.slices import SliceArea, largest_tumour_slices


def label_volume(size=(30, 30, 8), spacing=(0.5, 2.0, 3.0)):
    image = sitk.Image(list(size), sitk.sitkUInt8)
    image.SetSpacing(spacing)
    return image


def test_ircadb17_three_largest_slices_match_an_independent_count(ircadb17_independent_largest, ircadb17_label):
    expected = ircadb17_independent_largest
    picked = largest_tumour_slices(ircadb17_label)
    print("IRCADb-17 largest tumour slices:", picked)
    assert [s.index for s in picked] == [i for _, i in expected]
    for slice_area, (area, _) in zip(picked, expected):
        assert slice_area.area_mm2 == pytest.approx(area, rel=1e-6)
    assert picked[0].area_mm2 >= picked[1].area_mm2 >= picked[2].area_mm2


def test_empty_tumour_is_refused():
    label = label_volume()
    label[5:20, 5:20, 2:6] = 1  # liver only
    with pytest.raises(MaskError) as error:
        largest_tumour_slices(label)
    assert "\n" not in str(error.value)
    assert "no tumour voxels (label 2)" in str(error.value)


def test_areas_use_spacing_and_union_of_tumours():
    label = label_volume(spacing=(0.5, 2.0, 3.0))  # pixel area 1 mm²
    label[2:6, 2:6, 1] = 2  # 16 pixels
    label[2:6, 2:6, 4] = 2  # 16 pixels ...
    label[20:25, 20:25, 4] = 2  # ... plus a second tumour of 25 pixels on the same slice
    label[2:5, 2:5, 6] = 2  # 9 pixels
    label[10:15, 10:15, 3] = 1  # liver does not count
    picked = largest_tumour_slices(label)
    assert picked == [SliceArea(4, 41.0), SliceArea(1, 16.0), SliceArea(6, 9.0)]
    with pytest.raises(Exception):
        picked[0].index = 3  # frozen


def test_fewer_tumour_slices_than_asked_warns_or_raises():
    label = label_volume()
    label[2:6, 2:6, 3] = 2
    label[2:4, 2:4, 4] = 2
    with pytest.warns(UserWarning, match="only 2 axial slice"):
        picked = largest_tumour_slices(label, n=3)
    assert [s.index for s in picked] == [3, 4]
    with pytest.raises(MaskError, match="only 2 axial slice"):
        largest_tumour_slices(label, n=3, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(largest_tumour_slices(label, n=2)) == 2


def test_non_axial_label_is_refused():
    label = label_volume()
    label[2:6, 2:6, 3] = 2
    label.SetDirection((1, 0, 0, 0, 0, 1, 0, -1, 0))  # third axis along y: a coronal stack
    with pytest.raises(MaskError, match="not axial"):
        largest_tumour_slices(label)
