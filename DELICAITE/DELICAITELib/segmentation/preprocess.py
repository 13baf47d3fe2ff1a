"""From a CT (+ label) on any grid to the network's working grid, and the intensity scaling.

The working grid is axis-aligned in LPS (identity direction) at the config's spacing and covers the
image's physical box. Every volume therefore reaches the network with the same anatomical axis order
(x → patient left, y → posterior, z → superior) whatever its header direction, which is what lets a
network trained on a NIfTI with a flipped direction work on a DICOM series and vice versa.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from ..io.checks import physical_bounds
from .network import SegmentationConfig

AIR_HU = -1024.0  # value outside the scanned region; becomes 0 after scaling, like the network's padding
# A voxel's resolution is taken as its spacing (FWHM); sigma = FWHM / 2.355 of a Gaussian.
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def working_grid(image: sitk.Image, spacing_mm) -> sitk.Image:
    """An empty UInt8 reference image: identity direction, ``spacing_mm``, covering ``image``'s box."""
    lo, hi = physical_bounds(image)
    spacing = np.asarray(spacing_mm, dtype=float)
    size = np.maximum(np.ceil((hi - lo) / spacing - 1e-6), 1).astype(int)
    # centre the new grid on the old box so neither side loses more than half a voxel
    origin = (lo + hi) / 2.0 - (size - 1) * spacing / 2.0
    grid = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    grid.SetSpacing(spacing.tolist())
    grid.SetOrigin(origin.tolist())
    grid.SetDirection(np.eye(3).ravel().tolist())
    return grid


def resample_image(image: sitk.Image, grid: sitk.Image) -> sitk.Image:
    """Float32 CT on ``grid``: Gaussian anti-aliasing where the grid is coarser, then linear interpolation."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    target = np.asarray(grid.GetSpacing())
    source = np.asarray(image.GetSpacing())
    # CT is near-axial (check_ct), so the image's own axes match the grid's x y z closely enough here
    sigma = np.sqrt(np.clip(target**2 - source**2, 0.0, None)) * FWHM_TO_SIGMA
    for axis in range(3):  # axis by axis: an axis already as coarse as the grid needs none (sigma 0)
        if sigma[axis] > 0.1 * source[axis]:
            image = sitk.RecursiveGaussian(image, sigma=float(sigma[axis]), direction=axis)
    return sitk.Resample(image, grid, sitk.Transform(), sitk.sitkLinear, AIR_HU, sitk.sitkFloat32)


def resample_label(label: sitk.Image, grid: sitk.Image) -> sitk.Image:
    """UInt8 label map on ``grid`` by nearest neighbour (values stay 0/1/2)."""
    return sitk.Resample(label, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


def scale_intensity(values: np.ndarray, hu_window) -> np.ndarray:
    """HU clipped to ``hu_window`` and mapped linearly to 0..1 (float32)."""
    low, high = float(hu_window[0]), float(hu_window[1])
    return ((np.clip(values, low, high) - low) / (high - low)).astype(np.float32)


def to_working_arrays(image: sitk.Image, label: sitk.Image | None, config: SegmentationConfig):
    """(scaled image array, label array or None, working grid); arrays are (z, y, x) on the grid.

    ``label`` must lie on ``image``'s grid (read it with ``read_label(..., reference=image)``).
    """
    grid = working_grid(image, config.spacing_mm)
    resampled = resample_image(image, grid)  # kept alive: the array view below borrows its buffer
    values = scale_intensity(sitk.GetArrayViewFromImage(resampled), config.hu_window)
    labels = None if label is None else sitk.GetArrayFromImage(resample_label(label, grid))
    return values, labels, grid
