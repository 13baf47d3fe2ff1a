"""Landmarks read from the CT itself: the body, the lungs, and where the diaphragm must lie.

They let a liver mask be checked without a second network: the liver lies under the lungs (its dome
touches their bases), on the right of the mediastinum, and holds no contrast-filled lumen. Everything
is computed on a coarse axis-aligned grid (:data:`GRID_MM`), which takes about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .preprocess import resample_image, resample_label, working_grid

GRID_MM = (3.0, 3.0, 3.0)
AIR_HU = -400.0  # lung and gas are below this; every soft tissue is above
# Lung parenchyma is air with tissue in it: its darkest tenth stays above about -950 HU (measured -790
# to -940 on the shared CTs), while a gas-filled stomach or colon is pure air (-970 to -1000).
LUNG_P10_HU = -960.0
MIN_LUNG_ML = 15.0


@dataclass
class Anatomy:
    """Masks on ``grid`` (arrays z, y, x; z superior and x towards the patient's left, LPS)."""

    grid: sitk.Image
    hu: np.ndarray
    body: np.ndarray
    lungs: np.ndarray

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.grid.GetSpacing())) / 1000.0

    def on_grid(self, label: sitk.Image) -> np.ndarray:
        """``label`` (on the CT's grid) as an array on this grid, nearest neighbour."""
        return sitk.GetArrayFromImage(resample_label(label, self.grid))

    def lung_base_z(self) -> int | None:
        """The lowest slice index holding lung, or None when no lung is in the field of view."""
        z = np.flatnonzero(self.lungs.any(axis=(1, 2)))
        return int(z[0]) if z.size else None

    def body_midline_x(self, z: int) -> float:
        """x index of the body's centre in slice ``z``."""
        x = np.flatnonzero(self.body[z].any(axis=0))
        return float(x.mean()) if x.size else self.body.shape[2] / 2.0


def read_anatomy(image: sitk.Image) -> Anatomy:
    """Body and lungs of CT ``image`` on the coarse grid."""
    grid = working_grid(image, GRID_MM)
    hu = sitk.GetArrayFromImage(resample_image(image, grid))
    body = _body(hu)
    return Anatomy(grid, hu, body, _lungs(hu, body, float(np.prod(GRID_MM)) / 1000.0))


def _body(hu: np.ndarray) -> np.ndarray:
    """The largest connected non-air region, filled slice by slice (so lungs and bowel gas are inside)."""
    tissue = sitk.GetImageFromArray((hu > AIR_HU).astype(np.uint8))
    largest = sitk.RelabelComponent(sitk.ConnectedComponent(tissue), sortByObjectSize=True) == 1
    array = sitk.GetArrayFromImage(sitk.Cast(largest, sitk.sitkUInt8))
    filled = [sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(s))) for s in array]
    return np.stack(filled).astype(bool)


def _lungs(hu: np.ndarray, body: np.ndarray, voxel_ml: float) -> np.ndarray:
    """Air inside the body whose connected region looks like lung (tissue in it), not like bowel gas."""
    air = sitk.ConnectedComponent(sitk.GetImageFromArray((body & (hu < AIR_HU)).astype(np.uint8)))
    regions = sitk.GetArrayFromImage(air)
    sizes_ml = np.bincount(regions.ravel()) * voxel_ml
    lungs = np.zeros_like(body)
    for region in np.flatnonzero(sizes_ml >= MIN_LUNG_ML):
        inside = regions == region
        if region and np.percentile(hu[inside], 10) > LUNG_P10_HU:
            lungs |= inside
    return lungs
