"""A case's nodes (AP and VP volumes, the Liver/Tumor segmentation) as the images the case engine takes."""

from __future__ import annotations

from dataclasses import dataclass

import SimpleITK as sitk

from ..errors import DelicaiteError
from .segmentations import label_from_segmentation_node
from .volumes import image_from_volume_node


@dataclass
class CaseImages:
    """AP, VP (None for a single-phase case) and the label map on the AP grid."""

    ap: sitk.Image
    vp: sitk.Image | None
    label: sitk.Image


def images_from_case_nodes(ap_node, vp_node, segmentation_node) -> CaseImages:
    """The images of a case's nodes; ``vp_node`` None or the AP node itself means single phase."""
    if ap_node is None:
        raise DelicaiteError("select the arterial-phase (AP) volume")
    if segmentation_node is None:
        raise DelicaiteError("select a segmentation with Liver and Tumor segments (or auto-segment first)")
    scene = ap_node.GetScene()
    if scene is None or segmentation_node.GetScene() is not scene:
        raise DelicaiteError("the AP volume and the segmentation must be nodes of the same scene")
    single_phase = vp_node is None or vp_node is ap_node
    return CaseImages(image_from_volume_node(ap_node), None if single_phase else image_from_volume_node(vp_node),
                      label_from_segmentation_node(segmentation_node, ap_node))
