"""Checks that an image can be used as CT, and geometry helpers shared by the readers.

Every failure raises :class:`~DELICAITELib.errors.ImageError` with a one-line message that names the
problem and what to fix.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import ImageError

# Plausible voxel size per axis (mm): below is a unit error (m, cm), above is not a diagnostic CT.
MIN_SPACING_MM = 0.1
MAX_SPACING_MM = 20.0
# The slice normal (direction's third column) must be within ~26 degrees of the z axis.
AXIAL_MIN_COS = 0.9
# CT has air near -1000 HU (outside the body, lungs, bowel gas); other modalities or unscaled
# stored values do not. At least this fraction of the sampled voxels must lie in the air range.
AIR_RANGE_HU = (-1200.0, -800.0)
MIN_AIR_FRACTION = 1e-4
PADDING_BAND_SHARE = 0.1
# Checking the range on every 2nd slice and every 4th row/column is enough and keeps it fast.
_SAMPLE_STEP = (2, 4, 4)


def check_ct(image: sitk.Image, name: str = "image") -> None:
    """Raise ImageError unless ``image`` is a 3-D, axial, CT-like volume in Hounsfield units.

    Checks: 3-D with more than one slice, one component, spacing in 0.1–20 mm per axis, slice
    normal close to ±z, finite values and air near −1000 HU.
    """
    if image.GetDimension() == 2:
        raise ImageError(f"{name} is 2-D; expected a 3-D CT volume (pass the whole series, not one slice)")
    if image.GetDimension() != 3:
        raise ImageError(f"{name} is {image.GetDimension()}-D; expected a 3-D CT volume")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageError(
            f"{name} has {image.GetNumberOfComponentsPerPixel()} components per voxel (colour/vector image); "
            "expected a grey-level CT volume"
        )
    size = image.GetSize()
    if size[2] < 2:
        raise ImageError(
            f"{name} has a single slice ({size[0]}x{size[1]}x{size[2]}); "
            "expected a 3-D CT volume (pass the whole series)"
        )
    spacing = image.GetSpacing()
    if not all(MIN_SPACING_MM <= s <= MAX_SPACING_MM for s in spacing):
        raise ImageError(
            f"{name} has implausible voxel spacing {_fmt(spacing)} mm; expected {MIN_SPACING_MM}–{MAX_SPACING_MM} mm "
            "per axis (fix the header spacing/units)"
        )
    normal = slice_normal(image)
    if abs(normal[2]) < AXIAL_MIN_COS:
        raise ImageError(
            f"{name} is not axial: its slice normal is {_fmt(normal)}, expected close to ±z "
            "(reformat the volume to axial slices)"
        )
    _check_hounsfield(image, name)


def _check_hounsfield(image: sitk.Image, name: str) -> None:
    """Raise ImageError if the intensities are not finite or show no air near −1000 HU inside the field of
    view (the outer :data:`PADDING_BAND_SHARE` of rows and columns, where padding lies, does not count)."""
    step_z, step_y, step_x = _SAMPLE_STEP
    sample = sitk.GetArrayViewFromImage(image)[::step_z, ::step_y, ::step_x]
    if not np.isfinite(sample).all():
        raise ImageError(f"{name} contains NaN or infinite values; expected finite Hounsfield units")
    # Air inside the field of view, not only in bands along its edges: three rows of -1024 padding above
    # an MR image would otherwise pass for air
    margin_y, margin_x = (int(PADDING_BAND_SHARE * n) for n in sample.shape[1:])
    interior = sample[:, margin_y:sample.shape[1] - margin_y, margin_x:sample.shape[2] - margin_x]
    air = np.count_nonzero((interior >= AIR_RANGE_HU[0]) & (interior <= AIR_RANGE_HU[1]))
    if air < MIN_AIR_FRACTION * sample.size:
        # The message reports the whole volume's range, not the sample's.
        extremes = sitk.MinimumMaximumImageFilter()
        extremes.Execute(image)
        low, high = extremes.GetMinimum(), extremes.GetMaximum()
        raise ImageError(
            f"{name} does not look like CT: intensities {low:.0f}..{high:.0f}, "
            "expected Hounsfield units with air near −1000"
        )


def slice_normal(image: sitk.Image) -> tuple[float, float, float]:
    """The physical direction of the image's third axis (third column of the direction matrix)."""
    d = image.GetDirection()
    return (d[2], d[5], d[8])


def same_grid(a: sitk.Image, b: sitk.Image, tolerance_mm: float = 1e-3) -> bool:
    """True when both images have the same size, spacing, origin and direction.

    The tolerance absorbs float32 header rounding (e.g. NIfTI vs DICOM) without accepting a real shift.
    """
    if a.GetDimension() != b.GetDimension() or a.GetSize() != b.GetSize():
        return False
    return (
        np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=1e-4, atol=0.0)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), rtol=0.0, atol=tolerance_mm)
        and np.allclose(a.GetDirection(), b.GetDirection(), rtol=0.0, atol=1e-4)
    )


def physical_bounds(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned physical box (lower, upper corner in mm) covered by the image's voxels."""
    size = np.array(image.GetSize(), dtype=float)
    corners = []
    # Voxel edges lie half a voxel outside the first and last voxel centres.
    for corner in np.ndindex(*(2,) * image.GetDimension()):
        index = np.where(np.array(corner) == 1, size - 0.5, -0.5)
        corners.append(image.TransformContinuousIndexToPhysicalPoint(index.tolist()))
    corners = np.array(corners)
    return corners.min(axis=0), corners.max(axis=0)


def overlap_fraction(image: sitk.Image, other: sitk.Image) -> float:
    """Fraction (0–1) of ``image``'s physical box that ``other``'s physical box covers."""
    lo_a, hi_a = physical_bounds(image)
    lo_b, hi_b = physical_bounds(other)
    inter = np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0.0, None)
    volume = float(np.prod(hi_a - lo_a))
    return float(np.prod(inter)) / volume if volume > 0 else 0.0


def describe_extent(image: sitk.Image) -> str:
    """Short text of the physical box, for error messages: ``(x0..x1, y0..y1, z0..z1) mm``."""
    lo, hi = physical_bounds(image)
    return "(" + ", ".join(f"{a:.0f}..{b:.0f}" for a, b in zip(lo, hi)) + ") mm"


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"
