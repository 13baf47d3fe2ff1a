"""Segmentation quality against a reference mask: Dice, 95th-percentile Hausdorff distance (mm) and
volume error (mL), per structure ("liver" = label ≥ 1, "tumour" = label 2).

HD95 follows MONAI's ``compute_hausdorff_distance(percentile=95)``: the surface of a mask is its voxels
with a face neighbour outside it (voxels on the image border count as surface); for each surface voxel
of one mask the distance (mm, from the spacing) to the nearest surface voxel of the other is taken; HD95
is the larger of the two directed 95th percentiles. The distances come from SimpleITK's exact Euclidean
distance map (SignedMaurerDistanceMap) with the image spacing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..io.checks import same_grid
from ..io.labels import check_label, read_label
from .labelops import STRUCTURES, structure_mask

HD95_METHOD = (
    "max of the two directed 95th percentiles of surface-to-surface distances (MONAI convention), "
    "SimpleITK SignedMaurerDistanceMap with image spacing"
)


def evaluate_segmentation(prediction: sitk.Image, reference: sitk.Image) -> dict:
    """Dice, HD95 (mm) and volumes (mL) of ``prediction`` against ``reference``, per structure.

    A prediction on another grid is resampled onto the reference grid in physical space (nearest
    neighbour); no overlap raises MaskError. Per structure: ``dice``, ``hd95_mm``, ``volume_pred_ml``,
    ``volume_ref_ml``, ``volume_error_ml`` (pred − ref), ``volume_error_percent`` (None when the reference
    is empty) and ``note`` (None, or why dice/hd95 take a conventional value: empty in both → dice 1,
    hd95 0; empty in one → dice 0, hd95 None).
    """
    reference = check_label(reference, name="reference mask")
    resampled = not same_grid(prediction, reference)
    prediction = check_label(prediction, reference, name="prediction")
    result = {
        structure: _evaluate_structure(structure_mask(prediction, structure), structure_mask(reference, structure))
        for structure in STRUCTURES
    }
    result["spacing_mm"] = list(reference.GetSpacing())
    result["prediction_resampled"] = resampled
    result["hd95_method"] = HD95_METHOD
    return result


def evaluate_files(pred_path: str | Path, ref_path: str | Path) -> dict:
    """:func:`evaluate_segmentation` of two label files (or 3D-IRCADb mask folders), with their paths."""
    reference = read_label(ref_path)
    prediction = read_label(pred_path)
    result = evaluate_segmentation(prediction, reference)
    return {"prediction": str(pred_path), "reference": str(ref_path), **result}


def mask_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean arrays of one shape (1.0 when both are empty)."""
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 1.0 if total == 0 else float(2.0 * np.count_nonzero(a & b) / total)


def dice(pred: sitk.Image, ref: sitk.Image) -> float:
    """Dice coefficient of two 0/1 masks on one grid (1.0 when both are empty)."""
    return mask_dice(_array(pred), _array(ref))


def hd95_mm(pred: sitk.Image, ref: sitk.Image) -> float | None:
    """95th-percentile symmetric Hausdorff distance (mm) of two 0/1 masks on one grid.

    0.0 when both are empty, None when only one is (the distance is undefined).
    """
    p_any, r_any = _array(pred).any(), _array(ref).any()
    if not p_any and not r_any:
        return 0.0
    if not p_any or not r_any:
        return None
    # Distances between surfaces do not depend on what lies outside their joint bounding box: crop.
    pred, ref = _crop_to_union(pred, ref)
    surface_p, surface_r = _surface(pred), _surface(ref)
    to_r = _distance_to(surface_r)[_array(surface_p)]
    to_p = _distance_to(surface_p)[_array(surface_r)]
    return float(max(np.percentile(to_r, 95), np.percentile(to_p, 95)))


def _evaluate_structure(pred: sitk.Image, ref: sitk.Image) -> dict:
    voxel_ml = float(np.prod(ref.GetSpacing())) / 1000.0  # mm³ → mL
    volume_pred = float(np.count_nonzero(_array(pred)) * voxel_ml)
    volume_ref = float(np.count_nonzero(_array(ref)) * voxel_ml)
    note = None
    if volume_pred == 0 and volume_ref == 0:
        note = "empty in both prediction and reference: dice 1 and hd95 0 by convention"
    elif volume_ref == 0:
        note = "empty in the reference only: dice 0, hd95 undefined"
    elif volume_pred == 0:
        note = "empty in the prediction only: dice 0, hd95 undefined"
    return {
        "dice": dice(pred, ref),
        "hd95_mm": hd95_mm(pred, ref),
        "volume_pred_ml": volume_pred,
        "volume_ref_ml": volume_ref,
        "volume_error_ml": volume_pred - volume_ref,
        "volume_error_percent": 100.0 * (volume_pred - volume_ref) / volume_ref if volume_ref > 0 else None,
        "note": note,
    }


def _surface(mask: sitk.Image) -> sitk.Image:
    """Voxels of the mask with a face neighbour outside it; outside the image counts as outside."""
    eroded = sitk.BinaryErode(mask, [1, 1, 1], sitk.sitkCross, backgroundValue=0, foregroundValue=1,
                              boundaryToForeground=False)
    return sitk.Cast(sitk.And(mask, sitk.Not(eroded)), sitk.sitkUInt8)


def _distance_to(surface: sitk.Image) -> np.ndarray:
    """Distance (mm) of every voxel to the nearest voxel of ``surface``."""
    distance = sitk.SignedMaurerDistanceMap(surface, insideIsPositive=False, squaredDistance=False,
                                            useImageSpacing=True, backgroundValue=0)
    distance = np.abs(sitk.GetArrayFromImage(distance))
    distance[_array(surface)] = 0.0  # on the surface itself (the map leaves float noise ~1e-6 there)
    return distance


def _crop_to_union(a: sitk.Image, b: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Or(a, b))
    box = stats.GetBoundingBox(1)
    start, size = list(box[:3]), list(box[3:])
    # One voxel of margin keeps the image-border rule of the surface the same as on the full grid.
    start = [max(s - 1, 0) for s in start]
    stop = [min(s + n + 2, full) for s, n, full in zip(box[:3], size, a.GetSize())]
    size = [e - s for s, e in zip(start, stop)]
    return sitk.RegionOfInterest(a, size, start), sitk.RegionOfInterest(b, size, start)


def _array(mask: sitk.Image) -> np.ndarray:
    return sitk.GetArrayViewFromImage(mask).astype(bool)
