"""`DELICAITELib.mrml.slices` with slicer-core on IRCADb-17: the three largest tumour slices as a markups node.

The CT and label are cropped in-plane around the liver (every axial slice kept, so k and the tumour
areas are those of the full grid: slices 97, 96, 95 with 5323, 5322 and 5283 mm²).
"""

import json

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="slicer-core (MRML classes) is not installed")

from DELICAITELib.errors import MaskError  # noqa: E402
from DELICAITELib.mrml import new_scene, segmentation_node_from_label, volume_node_from_image  # noqa: E402
from DELICAITELib.mrml.slices import slice_markups_node, slice_positions_ras  # noqa: E402
from DELICAITELib.mrml.volumes import ras_to_ijk  # noqa: E402

TRUTH = [(97, 5323.0), (96, 5322.0), (95, 5283.0)]  # (k, area mm²) on the full grid, largest first
MARGIN = 8  # voxels around the liver in-plane


@pytest.fixture(scope="module")
def cropped_case(ircadb17_image, ircadb17_label):
    """IRCADb-17 CT and label cropped in x and y to the liver's bounding box (all slices kept)."""
    liver = sitk.GetArrayViewFromImage(ircadb17_label) >= 1
    _, j, i = np.nonzero(liver)
    size = ircadb17_image.GetSize()
    lower = [max(int(i.min()) - MARGIN, 0), max(int(j.min()) - MARGIN, 0), 0]
    upper = [max(size[0] - 1 - int(i.max()) - MARGIN, 0), max(size[1] - 1 - int(j.max()) - MARGIN, 0), 0]
    return sitk.Crop(ircadb17_image, lower, upper), sitk.Crop(ircadb17_label, lower, upper)


@pytest.fixture
def scene_with_case(cropped_case):
    image, label = cropped_case
    scene = new_scene()
    volume = volume_node_from_image(scene, image, "CT")
    return scene, volume, label


def test_positions_are_the_three_largest_slices_on_tumour(scene_with_case, ircadb17_independent_largest):
    _, volume, label = scene_with_case
    positions = slice_positions_ras(volume, label)
    assert [(p["index"], round(p["area_mm2"])) for p in positions] == TRUTH
    # the same slices and areas as counted from the DICOM masks with pydicom alone
    assert [p["index"] for p in positions] == [i for _, i in ircadb17_independent_largest]
    assert [p["area_mm2"] for p in positions] == pytest.approx([a for a, _ in ircadb17_independent_largest], rel=1e-6)
    values = sitk.GetArrayViewFromImage(label)
    for p in positions:
        i, j, k = ras_to_ijk(volume, p["ras"])
        assert k == pytest.approx(p["index"], abs=1e-6)
        assert values[p["index"], int(round(j)), int(round(i))] == 2  # on tumour
        assert p["offset"] == pytest.approx(p["ras"][2])
    # axial slices 1.6 mm apart: the red view's offsets step by the slice spacing
    assert np.diff([p["offset"] for p in positions]) == pytest.approx([-1.6, -1.6], abs=1e-3)


def test_markups_node_from_segmentation_node_saved_and_read_back(scene_with_case, tmp_path):
    scene, volume, label = scene_with_case
    segmentation = segmentation_node_from_label(scene, label, volume, "Auto")
    node = slice_markups_node(scene, volume, segmentation)  # a segmentation node works as well as a label

    assert node.IsA("vtkMRMLMarkupsFiducialNode") and node.GetScene() is scene
    assert node.GetName() == "Largest tumour slices"
    assert node.GetNumberOfControlPoints() == 3
    labels = [node.GetNthControlPointLabel(n) for n in range(3)]
    assert labels == ["k=97: 5323 mm²", "k=96: 5322 mm²", "k=95: 5283 mm²"]
    values = sitk.GetArrayViewFromImage(label)
    for n, (k, _) in enumerate(TRUTH):
        i, j, kk = ras_to_ijk(volume, node.GetNthControlPointPositionVector(n))
        assert round(kk) == k and abs(kk - k) < 1e-6
        assert values[k, int(round(j)), int(round(i))] == 2
        assert node.GetNthControlPointLocked(n)

    # saved as .mrk.json and read back into a fresh node: same points and labels
    path = tmp_path / "largest.mrk.json"
    storage = scene.AddNewNodeByClass("vtkMRMLMarkupsJsonStorageNode")
    storage.SetFileName(str(path))
    assert storage.WriteData(node)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert [p["label"] for p in saved["markups"][0]["controlPoints"]] == labels

    other = new_scene()
    copy = other.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "read back")
    reader = other.AddNewNodeByClass("vtkMRMLMarkupsJsonStorageNode")
    reader.SetFileName(str(path))
    assert reader.ReadData(copy)
    assert [copy.GetNthControlPointLabel(n) for n in range(copy.GetNumberOfControlPoints())] == labels
    for n in range(3):
        assert np.allclose(copy.GetNthControlPointPositionVector(n), node.GetNthControlPointPositionVector(n))


def test_refilling_a_node_and_asking_for_one_slice(scene_with_case):
    scene, volume, label = scene_with_case
    node = slice_markups_node(scene, volume, label)
    same = slice_markups_node(scene, volume, label, n=1, node=node)
    assert same is node and node.GetNumberOfControlPoints() == 1
    assert node.GetNthControlPointLabel(0) == "k=97: 5323 mm²"
    assert scene.GetNodesByClass("vtkMRMLMarkupsFiducialNode").GetNumberOfItems() == 1


def test_label_on_another_grid_or_without_tumour_is_refused(scene_with_case):
    scene, volume, label = scene_with_case
    shifted = sitk.Image(label)
    shifted.SetOrigin(tuple(np.asarray(label.GetOrigin()) + (5.0, 0.0, 0.0)))
    with pytest.raises(MaskError, match="not on the grid"):
        slice_positions_ras(volume, shifted)
    no_tumour = sitk.Cast(sitk.Clamp(label, upperBound=1), sitk.sitkUInt8)
    with pytest.raises(MaskError, match="no tumour voxels"):
        slice_markups_node(scene, volume, no_tumour)
    assert scene.GetNodesByClass("vtkMRMLMarkupsFiducialNode").GetNumberOfItems() == 0
