"""The MRML adapter: the only part of DELICAITELib that touches Slicer's MRML classes.

It runs inside the Slicer application and, for tests and plain-Python batch work, on the `slicer-core`
wheel (the real MRML classes without the Qt application). The library works in LPS with SimpleITK;
MRML is RAS, and these modules are the only place that converts between them.

- scene: a scene with the segmentation converters and colour tables registered; save and reload.
- volumes: volume node <-> SimpleITK image (voxels, origin, spacing and direction exact).
- case_nodes: a case's AP/VP volume and segmentation nodes as the images the case engine takes.
- segmentations: segmentation node ("Liver", "Tumor") <-> label map (1 liver, 2 tumour).
- slices: the three largest tumour slices as a markups node and slice-view positions.
- results: a case's result (CaseResult) as table and plot chart nodes.
- rendering: offscreen pictures of a slice view with its overlay and of a chart node.
"""

from .case_nodes import CaseImages, images_from_case_nodes
from .rendering import can_render_offscreen, render_chart, render_slice_view
from .results import (
    drivers_chart_node,
    drivers_table_node,
    frame_from_table_node,
    remove_result_nodes,
    result_nodes,
    result_table_node,
    risk_chart_node,
    table_node_from_frame,
)
from .scene import load_scene, new_scene, register_segmentation_converters, save_scene
from .segmentations import (
    SEGMENTS,
    SegmentStyle,
    label_from_segmentation_node,
    segmentation_node_from_label,
    update_segmentation_node,
)
from .slices import slice_markups_node, slice_positions_ras
from .volumes import image_from_volume_node, update_volume_node, volume_node_from_image

__all__ = [
    "CaseImages", "images_from_case_nodes", "SEGMENTS", "SegmentStyle", "can_render_offscreen", "drivers_chart_node", "drivers_table_node",
    "frame_from_table_node", "image_from_volume_node", "label_from_segmentation_node", "load_scene",
    "new_scene", "register_segmentation_converters", "remove_result_nodes", "result_nodes",
    "render_chart", "render_slice_view", "result_table_node", "risk_chart_node", "save_scene",
    "segmentation_node_from_label", "slice_markups_node", "slice_positions_ras", "table_node_from_frame",
    "update_segmentation_node", "update_volume_node", "volume_node_from_image",
]
