"""The MRML adapter on the real MRML classes of the slicer-core wheel: volumes and segmentations of real
CT (3D-IRCADb patient 17) through nodes and back, geometry semantics (LPS <-> RAS), scene save/reload,
and the errors a user gets for nodes the library cannot use."""

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="the MRML adapter tests need the slicer-core wheel (pip install '.[test]')")

from DELICAITELib import mrml  # noqa: E402
from DELICAITELib.errors import DelicaiteError, ImageError, MaskError  # noqa: E402
from DELICAITELib.mrml.volumes import ijk_to_ras, ras_to_ijk  # noqa: E402


@pytest.fixture(scope="module")
def ircadb_nodes(ircadb17_image, ircadb17_label):
    scene = mrml.new_scene()
    volume = mrml.volume_node_from_image(scene, ircadb17_image, "IRCADb-17 CT")
    segmentation = mrml.segmentation_node_from_label(scene, ircadb17_label, volume, "IRCADb-17 masks")
    return scene, volume, segmentation


def _oblique_image(left_handed: bool = False) -> sitk.Image:
    """A small int16 CT-like image with anisotropic spacing, an offset origin and a rotated, flipped frame.

    Right-handed by default: Slicer's file readers reorder the voxels of a left-handed grid on reading
    (same physical image, other voxel order), which is correct but not what a voxel comparison wants.
    """
    values = np.random.default_rng(3).integers(-1000, 1500, size=(7, 9, 11)).astype(np.int16)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.71, 0.83, 2.5))
    image.SetOrigin((-181.2, 25.5, -301.0))
    angle = np.deg2rad(17)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, -1 if left_handed else 1]])
    flip = np.diag([-1, 1, -1]) if not left_handed else np.eye(3)
    image.SetDirection(tuple((flip @ rotation).ravel()))
    return image


def test_real_ct_through_a_volume_node_and_back_is_identical(ircadb_nodes, ircadb17_image):
    _, volume, _ = ircadb_nodes
    back = mrml.image_from_volume_node(volume)
    assert back.GetPixelID() == ircadb17_image.GetPixelID()
    assert back.GetSize() == ircadb17_image.GetSize() == (512, 512, 119)
    assert np.array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(ircadb17_image))
    assert back.GetOrigin() == ircadb17_image.GetOrigin()
    assert back.GetSpacing() == ircadb17_image.GetSpacing()
    assert back.GetDirection() == ircadb17_image.GetDirection()


def test_volume_node_geometry_is_ras(ircadb_nodes, ircadb17_image):
    """Every voxel sits at the same physical point: RAS in the node = LPS in SimpleITK with x, y negated."""
    _, volume, _ = ircadb_nodes
    for index in [(0, 0, 0), (511, 0, 118), (256, 300, 97)]:
        lps = np.array(ircadb17_image.TransformIndexToPhysicalPoint(index))
        ras = ijk_to_ras(volume, index)
        assert ras == pytest.approx(lps * [-1, -1, 1], abs=1e-6)
        assert ras_to_ijk(volume, ras) == pytest.approx(index, abs=1e-6)


@pytest.mark.parametrize("left_handed", [False, True])
def test_oblique_geometry_round_trips_exactly(left_handed):
    scene = mrml.new_scene()
    image = _oblique_image(left_handed)
    node = mrml.volume_node_from_image(scene, image, "oblique")
    back = mrml.image_from_volume_node(node)
    assert back.GetPixelID() == sitk.sitkInt16
    assert np.array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image))
    assert back.GetOrigin() == pytest.approx(image.GetOrigin(), abs=1e-12)
    assert back.GetSpacing() == pytest.approx(image.GetSpacing(), abs=1e-12)
    assert back.GetDirection() == pytest.approx(image.GetDirection(), abs=1e-12)
    corner = (10, 8, 6)
    lps = np.array(image.TransformIndexToPhysicalPoint(corner))
    assert ijk_to_ras(node, corner) == pytest.approx(lps * [-1, -1, 1], abs=1e-9)


def test_real_masks_through_a_segmentation_node_and_back(ircadb_nodes, ircadb17_label):
    _, volume, segmentation_node = ircadb_nodes
    back = mrml.label_from_segmentation_node(segmentation_node, volume)
    expected = sitk.GetArrayViewFromImage(ircadb17_label)
    assert np.array_equal(sitk.GetArrayViewFromImage(back), expected)
    assert back.GetOrigin() == ircadb17_label.GetOrigin()
    assert back.GetDirection() == ircadb17_label.GetDirection()
    assert (expected == 2).sum() > 10_000 and (expected == 1).sum() > 500_000  # real liver and tumour


def test_segments_carry_names_colours_and_terminology(ircadb_nodes):
    _, _, segmentation_node = ircadb_nodes
    segmentation = segmentation_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 2
    for style in mrml.SEGMENTS:
        segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(style.name))
        assert segment.GetColor() == pytest.approx(style.colour)
        assert "SCT^10200004^Liver" in segment.GetTerminology()
    tumour = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("Tumor"))
    assert "Neoplasm" in tumour.GetTerminology()


def test_updating_a_segmentation_replaces_its_segments(ircadb17_label):
    small = sitk.RegionOfInterest(ircadb17_label, (120, 10, 20), (220, 200, 80))  # tumour region, cropped
    scene = mrml.new_scene()
    reference = mrml.volume_node_from_image(scene, sitk.Cast(small, sitk.sitkInt16) * 0 - 1000, "crop")
    node = mrml.segmentation_node_from_label(scene, small, reference)
    emptier = sitk.Cast(small == 2, sitk.sitkUInt8) * 2  # only the tumour left
    mrml.update_segmentation_node(node, emptier)
    assert node.GetSegmentation().GetNumberOfSegments() == 2
    back = sitk.GetArrayFromImage(mrml.label_from_segmentation_node(node, reference))
    assert np.array_equal(back, sitk.GetArrayViewFromImage(emptier))
    assert (back == 2).any() and not (back == 1).any()


def test_scene_saved_and_reloaded(tmp_path, ircadb17_label):
    scene = mrml.new_scene()
    image = _oblique_image()
    label_values = np.zeros(image.GetSize()[::-1], dtype=np.uint8)
    label_values[2:5, 3:7, 2:9] = 1
    label_values[3, 4:6, 4:7] = 2
    label = sitk.GetImageFromArray(label_values)
    label.CopyInformation(image)
    volume = mrml.volume_node_from_image(scene, image, "CT phase AP")
    mrml.segmentation_node_from_label(scene, label, volume, "Liver and tumour")
    path = mrml.save_scene(scene, tmp_path / "case" / "scene.mrml")

    reloaded = mrml.load_scene(path)
    volume2 = reloaded.GetFirstNodeByName("CT phase AP")
    segmentation2 = reloaded.GetFirstNodeByName("Liver and tumour")
    assert volume2 is not None and segmentation2 is not None
    image2 = mrml.image_from_volume_node(volume2)
    assert np.array_equal(sitk.GetArrayViewFromImage(image2), sitk.GetArrayViewFromImage(image))
    assert image2.GetOrigin() == pytest.approx(image.GetOrigin(), abs=1e-9)
    assert image2.GetSpacing() == pytest.approx(image.GetSpacing(), abs=1e-9)
    assert image2.GetDirection() == pytest.approx(image.GetDirection(), abs=1e-9)
    assert np.array_equal(sitk.GetArrayFromImage(mrml.label_from_segmentation_node(segmentation2, volume2)),
                          label_values)


def test_transformed_volume_is_refused_with_what_to_do():
    scene = mrml.new_scene()
    node = mrml.volume_node_from_image(scene, _oblique_image(), "moved")
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    node.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(ImageError, match="harden"):
        mrml.image_from_volume_node(node)


def test_empty_volume_node_is_refused():
    scene = mrml.new_scene()
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "nothing loaded")
    with pytest.raises(ImageError, match="no image"):
        mrml.image_from_volume_node(node)


def test_segmentation_without_liver_or_tumour_names_what_it_has():
    scene = mrml.new_scene()
    volume = mrml.volume_node_from_image(scene, _oblique_image(), "ct")
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "other")
    node.GetSegmentation().AddEmptySegment("Spleen", "Spleen")
    with pytest.raises(MaskError, match="Spleen"):
        mrml.label_from_segmentation_node(node, volume)


def test_label_with_unknown_values_is_refused():
    scene = mrml.new_scene()
    image = _oblique_image()
    volume = mrml.volume_node_from_image(scene, image, "ct")
    label = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 7
    label.CopyInformation(image)
    with pytest.raises(MaskError, match=r"\[7\]"):
        mrml.segmentation_node_from_label(scene, label, volume)


def test_scene_file_must_be_mrml(tmp_path):
    with pytest.raises(DelicaiteError, match=".mrml"):
        mrml.save_scene(mrml.new_scene(), tmp_path / "scene.mrb")
