"""Segmentation nodes <-> label maps (0 background, 1 liver parenchyma, 2 tumour).

The node holds two non-overlapping segments, "Liver" and "Tumor", with fixed colours and DICOM
terminology so the Segment Editor shows them as liver and liver tumour. Going back, the tumour wins
where the user painted both, and the label map lies on the grid of the reference CT volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from vtk.util import numpy_support

from ..errors import MaskError
from ..io.labels import LIVER, TUMOUR
from .volumes import image_from_volume_node, update_volume_node


@dataclass(frozen=True)
class SegmentStyle:
    name: str
    label: int
    colour: tuple[float, float, float]
    terminology: str  # Slicer's serialised terminology entry (context~category~type~modifier~region~...)


_REGION_NONE = "Anatomic codes - DICOM master list~^^~^^"
SEGMENTS = (
    SegmentStyle("Liver", LIVER, (0.86, 0.51, 0.40),
                 "Segmentation category and type - 3D Slicer General Anatomy list"
                 "~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^~" + _REGION_NONE),
    SegmentStyle("Tumor", TUMOUR, (0.95, 0.85, 0.15),
                 "Segmentation category and type - 3D Slicer General Anatomy list"
                 "~SCT^49755003^Morphologically Altered Structure~SCT^108369006^Neoplasm~^^"
                 "~Anatomic codes - DICOM master list~SCT^10200004^Liver~^^"),
)


def segmentation_node_from_label(scene, label: sitk.Image, reference_volume_node, name: str = "Segmentation"):
    """A new segmentation node in ``scene`` with the "Liver" and "Tumor" segments of ``label``."""
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
    update_segmentation_node(node, label)
    return node


def update_segmentation_node(node, label: sitk.Image) -> None:
    """Replace the "Liver" and "Tumor" segments of ``node`` by those of ``label`` (other segments stay)."""
    values = sitk.GetArrayViewFromImage(label)
    unexpected = set(np.unique(values).tolist()) - {0, LIVER, TUMOUR}
    if unexpected:
        raise MaskError(f"label map values {sorted(unexpected)} are not 0 (background), 1 (liver) or 2 (tumour)")
    segmentation = node.GetSegmentation()
    for style in SEGMENTS:
        mask = (values == style.label).astype(np.uint8)
        oriented = _oriented_image(mask, label)
        segment_id = segmentation.GetSegmentIdBySegmentName(style.name)
        if segment_id:
            slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
                oriented, node, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
        else:
            segment_id = node.AddSegmentFromBinaryLabelmapRepresentation(oriented, style.name, style.colour)
        segment = segmentation.GetSegment(segment_id)
        segment.SetColor(*style.colour)
        segment.SetTerminology(style.terminology)


def label_from_segmentation_node(node, reference_volume_node) -> sitk.Image:
    """The label map (UInt8: 1 "Liver", 2 "Tumor") of ``node`` on the grid of ``reference_volume_node``."""
    segmentation = node.GetSegmentation()
    reference = image_from_volume_node(reference_volume_node)
    label = np.zeros(sitk.GetArrayViewFromImage(reference).shape, dtype=np.uint8)
    found = []
    for style in SEGMENTS:  # Liver first, so the tumour wins where both were painted
        segment_id = segmentation.GetSegmentIdBySegmentName(style.name)
        if not segment_id:
            continue
        found.append(style.name)
        label[_segment_on_reference(node, segment_id, reference_volume_node) > 0] = style.label
    if not found:
        names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
        raise MaskError(f"segmentation {node.GetName()!r} has no segment named Liver or Tumor "
                        f"(it has: {', '.join(names) or 'none'}); rename the segments or auto-segment first")
    image = sitk.GetImageFromArray(label)
    image.CopyInformation(reference)
    return image


def _segment_on_reference(node, segment_id: str, reference_volume_node) -> np.ndarray:
    """One segment as a 0/1 (z, y, x) array on the reference volume's grid."""
    scene = node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__delicaite_export__")
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            node, ids, labelmap, reference_volume_node)
        if not ok:
            raise MaskError(f"could not export segment {segment_id!r} of {node.GetName()!r}")
        data = labelmap.GetImageData()
        nx, ny, nz = data.GetDimensions()
        return numpy_support.vtk_to_numpy(data.GetPointData().GetScalars()).reshape(nz, ny, nx).copy()
    finally:
        colour_node = labelmap.GetDisplayNode().GetColorNode() if labelmap.GetDisplayNode() else None
        scene.RemoveNode(labelmap)
        if colour_node is not None and colour_node.GetName().startswith("__delicaite_export__"):
            scene.RemoveNode(colour_node)


def _oriented_image(mask: np.ndarray, geometry: sitk.Image) -> "slicer.vtkOrientedImageData":
    """A 0/1 mask on ``geometry``'s grid as the vtkOrientedImageData segments are made of."""
    carrier = slicer.vtkMRMLLabelMapVolumeNode()  # not in a scene: only borrows its geometry maths
    image = sitk.GetImageFromArray(mask)
    image.CopyInformation(geometry)
    update_volume_node(carrier, image)
    oriented = slicer.vtkOrientedImageData()
    oriented.ShallowCopy(carrier.GetImageData())
    matrix = vtk.vtkMatrix4x4()
    carrier.GetIJKToRASMatrix(matrix)
    oriented.SetImageToWorldMatrix(matrix)
    return oriented
