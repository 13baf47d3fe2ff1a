"""The three largest tumour slices on MRML: a markups node with one point per slice and slice positions.

Which slices is `DELICAITELib.slices.largest_tumour_slices` (areas in mm² on the label's grid); this file
only places them in RAS. Each point sits on its slice at the tumour's centroid there, or at the tumour
pixel nearest to it when the centroid falls outside (two tumours, a crescent), so the point is always
on tumour.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import vtk

from ..errors import MaskError
from ..slices import N_LARGEST_SLICES, TUMOUR_LABEL, largest_tumour_slices
from .volumes import LPS_TO_RAS, ijk_to_ras

DEFAULT_NAME = "Largest tumour slices"
# Grids that differ by less than this (mm) are the same grid (DICOM rounding).
_GRID_TOLERANCE_MM = 1e-3


def slice_point_label(index: int, area_mm2: float) -> str:
    """The control point label, e.g. "k=97: 5323 mm²"."""
    return f"k={index}: {area_mm2:.0f} mm²"


def slice_positions_ras(volume_node, label, n: int = N_LARGEST_SLICES) -> list[dict]:
    """The ``n`` largest tumour slices, largest first, as dicts:

    ``index`` (axial k of the volume), ``area_mm2``, ``ras`` (the tumour point on that slice, RAS mm)
    and ``offset`` (the S coordinate of that point: the offset the axial red slice view jumps to).
    ``label`` is a sitk label map on the volume's grid or a segmentation node with "Liver"/"Tumor".
    """
    label = _label_on_volume_grid(volume_node, label)
    values = sitk.GetArrayViewFromImage(label)  # (k, j, i)
    positions = []
    for area in largest_tumour_slices(label, n):
        ijk = _tumour_point(values[area.index] == TUMOUR_LABEL, area.index)
        ras = ijk_to_ras(volume_node, ijk)
        positions.append({"index": area.index, "area_mm2": area.area_mm2, "ras": [float(v) for v in ras],
                          "offset": float(ras[2])})
    return positions


def slice_markups_node(scene, volume_node, label, n: int = N_LARGEST_SLICES, name: str = DEFAULT_NAME,
                       node=None):
    """A vtkMRMLMarkupsFiducialNode with one locked point per largest tumour slice, labelled "k=…: … mm²".

    Points are in the order of `slice_positions_ras` (largest area first). Pass ``node`` to refill an
    existing markups node instead of adding a new one.
    """
    positions = slice_positions_ras(volume_node, label, n)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
        node.CreateDefaultDisplayNodes()
    else:
        node.RemoveAllControlPoints()
    was_modifying = node.StartModify()
    try:
        for position in positions:
            point = node.AddControlPoint(*position["ras"], slice_point_label(position["index"], position["area_mm2"]))
            node.SetNthControlPointDescription(
                point, f"axial slice {position['index']}: tumour area {position['area_mm2']:.1f} mm²")
            node.SetNthControlPointLocked(point, True)  # the points record a measurement, not a drawing
    finally:
        node.EndModify(was_modifying)
    return node


def _label_on_volume_grid(volume_node, label) -> sitk.Image:
    if hasattr(label, "GetSegmentation"):  # a segmentation node
        from .segmentations import label_from_segmentation_node

        return label_from_segmentation_node(label, volume_node)
    image_data = volume_node.GetImageData() if volume_node is not None else None
    if image_data is None:
        raise MaskError("the volume node holds no image; load or select the CT first")
    same = (tuple(image_data.GetDimensions()) == tuple(label.GetSize())
            and np.allclose(volume_node.GetSpacing(), label.GetSpacing(), atol=_GRID_TOLERANCE_MM)
            and np.allclose(volume_node.GetOrigin(), LPS_TO_RAS @ np.asarray(label.GetOrigin()),
                            atol=_GRID_TOLERANCE_MM)
            and np.allclose(_ras_directions(volume_node), LPS_TO_RAS @ np.reshape(label.GetDirection(), (3, 3)),
                            atol=1e-4))
    if not same:
        raise MaskError(f"the label map is not on the grid of volume {volume_node.GetName()!r}; "
                        "export the segmentation onto that volume first")
    return label


def _ras_directions(volume_node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASDirectionMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])


def _tumour_point(tumour: np.ndarray, k: int) -> tuple[float, float, float]:
    """(i, j, k) of the tumour's centroid on slice ``k``, or of its tumour pixel nearest the centroid."""
    j, i = np.nonzero(tumour)
    ci, cj = i.mean(), j.mean()
    if tumour[int(round(cj)), int(round(ci))]:
        return float(ci), float(cj), float(k)
    nearest = np.argmin((i - ci) ** 2 + (j - cj) ** 2)
    return float(i[nearest]), float(j[nearest]), float(k)
