"""The MRML adapter: the only part of DELICAITELib that touches Slicer's MRML classes.

It runs inside the Slicer application and, for tests and plain-Python batch work, on the `slicer-core`
wheel (the real MRML classes without the Qt application). The library works in LPS with SimpleITK;
MRML is RAS, and these modules are the only place that converts between them.

- scene: a scene with the segmentation converters registered; save and reload.
- volumes: volume node <-> SimpleITK image (voxels, origin, spacing and direction exact).
- segmentations: segmentation node ("Liver", "Tumor") <-> label map (1 liver, 2 tumour).
- results: result tables and the risk / driver charts.
- slices: the three largest tumour slices as a markups node and slice positions.
- case: whole-case operations on nodes (segment, pick slices, recommend) for the module Logic classes.
- rendering: offscreen pictures of a slice view with its overlay and of a chart.
"""

from .scene import load_scene, new_scene, register_segmentation_converters, save_scene
from .segmentations import (
    SEGMENTS,
    SegmentStyle,
    label_from_segmentation_node,
    segmentation_node_from_label,
    update_segmentation_node,
)
from .volumes import image_from_volume_node, update_volume_node, volume_node_from_image

__all__ = [
    "SEGMENTS", "SegmentStyle", "image_from_volume_node", "label_from_segmentation_node", "load_scene",
    "new_scene", "register_segmentation_converters", "save_scene", "segmentation_node_from_label",
    "update_segmentation_node", "update_volume_node", "volume_node_from_image",
]
