"""The axial slices with the largest tumour cross-section (the study uses the three largest).

Axial means the image's third axis; areas are in mm² from the in-plane spacing. Several tumours on a
slice count as their union.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .errors import MaskError
from .io.checks import AXIAL_MIN_COS, slice_normal

# The study picks the three slices with the largest tumour cross-section.
N_LARGEST_SLICES = 3
TUMOUR_LABEL = 2


@dataclass(frozen=True)
class SliceArea:
    """One axial slice: ``index`` along the image's third (z) axis and the tumour area on it in mm²."""

    index: int
    area_mm2: float


def tumour_areas_mm2(label: sitk.Image, tumour_label: int = TUMOUR_LABEL) -> np.ndarray:
    """Tumour area (mm²) on every axial slice, indexed by z. Raises MaskError for a non-axial label map."""
    if label.GetDimension() != 3:
        raise MaskError(f"label map is {label.GetDimension()}-D; expected a 3-D label map")
    normal = slice_normal(label)
    if abs(normal[2]) < AXIAL_MIN_COS:
        raise MaskError(
            f"label map is not axial: its third axis points along ({normal[0]:.2f}, {normal[1]:.2f}, {normal[2]:.2f}), "
            "expected close to ±z (reformat image and mask to axial slices)"
        )
    spacing_x, spacing_y = label.GetSpacing()[:2]
    counts = np.count_nonzero(sitk.GetArrayViewFromImage(label) == tumour_label, axis=(1, 2))
    return counts * (spacing_x * spacing_y)


def largest_tumour_slices(
    label: sitk.Image, n: int = N_LARGEST_SLICES, tumour_label: int = TUMOUR_LABEL, strict: bool = False
) -> list[SliceArea]:
    """The ``n`` axial slices with the largest tumour area, largest first (ties: lower index first).

    Raises MaskError when there is no tumour. When fewer than ``n`` slices hold tumour, returns those
    with a warning, or raises MaskError when ``strict``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    areas = tumour_areas_mm2(label, tumour_label)
    with_tumour = np.flatnonzero(areas)
    if with_tumour.size == 0:
        raise MaskError(f"the label map has no tumour voxels (label {tumour_label}); segment the tumour first")
    if with_tumour.size < n:
        message = f"only {with_tumour.size} axial slice(s) contain tumour, fewer than the {n} requested"
        if strict:
            raise MaskError(f"{message}; check the tumour segmentation or ask for fewer slices")
        warnings.warn(f"{message}; using those (check the tumour segmentation)", stacklevel=2)
    # Stable sort on the negated area keeps the lower index first among equal areas.
    order = with_tumour[np.argsort(-areas[with_tumour], kind="stable")][:n]
    return [SliceArea(index=int(z), area_mm2=float(areas[z])) for z in order]
