"""One-click corrections of a label map (0 background, 1 liver, 2 tumour), as the Slicer module offers them.

Every function takes a label map, returns a new one on the same grid and never modifies its input.
Points are physical LPS coordinates in mm (what a click in Slicer gives after RAS→LPS); a voxel index
(i, j, k) may be passed instead through the ``index``/``seed_index`` keyword. Sizes are in mm and are
converted to voxels per axis from the spacing. Tumour voxels are always liver voxels too: a correction
that removes tumour turns it into liver parenchyma (1), one that removes liver removes its tumour.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import ImageError, MaskError
from ..io.checks import same_grid
from ..io.labels import check_label
from .labelops import check_structure, compose, fill_holes as _fill_binary, largest_component, structure_mask

SMOOTH_METHODS = ("closing", "median")
GROW_METHODS = ("confidence", "connected")
# A grown tumour covering more than this fraction of the liver has almost surely leaked.
LEAK_WARNING_FRACTION = 0.5
# Median radius of the optional denoising: the 8 neighbours in-plane, across slices only when they are thin
# (a median across thick slices would eat the tumour's top and bottom).
DENOISE_RADIUS_MM = 1.0
# Voxels outside the liver get this value before region growing, so no interval can reach them.
_OUTSIDE_LIVER = -1.0e6


def keep_largest_island(label: sitk.Image, structure: str = "liver") -> sitk.Image:
    """Keep only the largest connected island of ``structure`` ("liver" or "tumour").

    Dropped liver islands become background (with their tumour); dropped tumour islands become liver
    parenchyma (1), since they lie inside the liver.
    """
    label = _checked(label)
    kept = largest_component(structure_mask(label, structure))
    return _replace(label, structure, kept)


def fill_holes(label: sitk.Image, structure: str = "liver", slice_wise: bool = True) -> sitk.Image:
    """Fill enclosed holes of ``structure`` in 3-D and, with ``slice_wise``, in each axial slice.

    Holes filled in the liver become parenchyma (1); holes filled in a tumour become tumour (2).
    """
    label = _checked(label)
    filled = _fill_binary(structure_mask(label, structure), slice_wise=slice_wise)
    return _replace(label, structure, filled)


def smooth(label: sitk.Image, structure: str = "liver", method: str = "closing", radius_mm: float = 2.0) -> sitk.Image:
    """Smooth ``structure`` by a morphological closing (fills notches and gaps) or a median filter.

    ``radius_mm`` is converted to a radius in voxels on each axis from the spacing (at least one axis
    must get ≥ 1 voxel). A smoothed tumour is kept inside the liver; smoothing the liver keeps its tumour
    where the liver remains.
    """
    label = _checked(label)
    if method not in SMOOTH_METHODS:
        raise MaskError(f"unknown smoothing method {method!r}; use one of {', '.join(SMOOTH_METHODS)}")
    radius = radius_in_voxels(label, radius_mm)
    mask = structure_mask(label, structure)
    if method == "closing":
        smoothed = sitk.BinaryMorphologicalClosing(mask, radius, sitk.sitkBall, 1)
    else:
        smoothed = sitk.BinaryMedian(mask, radius, foregroundValue=1, backgroundValue=0)
    return _replace(label, structure, sitk.Cast(smoothed, sitk.sitkUInt8))


def restrict_tumour_to_liver(label: sitk.Image, liver: sitk.Image | None = None) -> sitk.Image:
    """Remove tumour lying outside the liver; the liver parenchyma is left as it is.

    "The liver" is the largest connected liver island (label ≥ 1) of ``label`` or, when given, the
    non-zero voxels of the ``liver`` mask on the same grid (e.g. a TotalSegmentator liver). Tumour
    outside it becomes background.
    """
    label = _checked(label)
    if liver is None:
        inside = largest_component(structure_mask(label, "liver"))
    else:
        if not same_grid(liver, label):
            raise MaskError(
                "the liver mask is not on the grid of the label map; resample it onto the label's image first"
            )
        inside = sitk.Cast(liver != 0, sitk.sitkUInt8)
        inside.CopyInformation(label)
    outside_tumour = sitk.And(structure_mask(label, "tumour"), sitk.Not(inside))
    return sitk.Mask(label, outside_tumour == 0, outsideValue=0)


def remove_component_at(
    label: sitk.Image,
    point: Sequence[float] | None = None,
    structure: str = "liver",
    *,
    index: Sequence[int] | None = None,
) -> sitk.Image:
    """Remove the connected island of ``structure`` under ``point`` (LPS mm) or voxel ``index``.

    A removed liver island becomes background (with its tumour); a removed tumour island becomes liver
    parenchyma. Raises MaskError when the point is outside the image or not on that structure.
    """
    label = _checked(label)
    check_structure(structure)
    voxel = voxel_index(label, point, index)
    mask = structure_mask(label, structure)
    if mask[voxel] == 0:
        raise MaskError(
            f"no {structure} at {_where(label, voxel)} (label {label[voxel]}); "
            f"click inside the {structure} island to remove"
        )
    components = sitk.ConnectedComponent(mask, True)
    keep = sitk.Cast(sitk.And(mask, components != components[voxel]), sitk.sitkUInt8)
    return _replace(label, structure, keep)


def grow_tumour_from_seed(
    image: sitk.Image,
    label: sitk.Image,
    seed_point: Sequence[float] | None = None,
    method: str = "confidence",
    *,
    seed_index: Sequence[int] | None = None,
    multiplier: float = 2.5,
    iterations: int = 3,
    neighbourhood_mm: float = 2.0,
    lower: float | None = None,
    upper: float | None = None,
    tolerance_hu: float = 30.0,
    denoise: bool = True,
) -> sitk.Image:
    """Grow a tumour from a seed inside the liver and add it to the label map as tumour (2).

    ``method="confidence"`` (SimpleITK ConfidenceConnected): starts from the mean ± ``multiplier`` ×
    standard deviation of the CT within ``neighbourhood_mm`` of the seed (shrunk to stay in the liver)
    and re-estimates the interval from the grown region ``iterations`` times. ``method="connected"``
    (ConnectedThreshold): grows over ``lower``..``upper`` HU, by default the seed neighbourhood's mean ±
    ``tolerance_hu``. The neighbourhood's radius in voxels is the same on every axis (ITK's rule), sized on
    the coarsest axis.
    Growing never leaves the liver (label ≥ 1). ``denoise`` applies a median of radius ~1 mm per axis
    (0 across slices thicker than 2 mm) to the CT first, which keeps CT noise from stopping or scattering
    the growth. ``image`` is the CT on the label's grid.

    Raises MaskError when the seed is outside the image or outside the liver, or when nothing grows;
    warns when the grown region covers more than half the liver (a likely leak: lower the multiplier or
    the tolerance).
    """
    label = _checked(label)
    if method not in GROW_METHODS:
        raise MaskError(f"unknown region-growing method {method!r}; use one of {', '.join(GROW_METHODS)}")
    if not same_grid(image, label):
        raise ImageError(
            "the CT and the label map are on different grids; grow the tumour on the CT the mask was made on"
        )
    seed = voxel_index(label, seed_point, seed_index)
    liver = structure_mask(label, "liver")
    if liver[seed] == 0:
        raise MaskError(
            f"the seed {_where(label, seed)} is outside the liver; place the seed on the tumour inside the liver mask"
        )
    # Work inside the liver's bounding box (faster), with everything outside the liver out of reach.
    box_start, box_size = _bounding_box(liver)
    ct = sitk.Cast(image, sitk.sitkFloat32)  # a new image: the caller's keeps its header
    ct.CopyInformation(label)  # same grid up to header rounding, which SimpleITK filters would refuse
    ct = sitk.RegionOfInterest(ct, box_size, box_start)
    inside = sitk.RegionOfInterest(liver, box_size, box_start)
    if denoise:
        ct = sitk.Median(ct, [int(round(DENOISE_RADIUS_MM / sp)) for sp in label.GetSpacing()])
    ct = sitk.Mask(ct, inside, outsideValue=_OUTSIDE_LIVER)
    local_seed = tuple(int(s - b) for s, b in zip(seed, box_start))
    # ITK's seed neighbourhood has the same radius in voxels on every axis: size it on the coarsest axis
    # (on thin-slice axes it is then smaller than asked, never larger), with at least one voxel.
    radius = max(1, int(round(neighbourhood_mm / max(label.GetSpacing()))))
    radius = _neighbourhood_inside(inside, local_seed, radius)

    if method == "confidence":
        grown = sitk.ConfidenceConnected(
            ct, seedList=[local_seed], numberOfIterations=iterations, multiplier=multiplier,
            initialNeighborhoodRadius=radius, replaceValue=1,
        )
    else:
        if lower is None or upper is None:
            mean = _neighbourhood_mean(ct, local_seed, radius)
            lower = mean - tolerance_hu if lower is None else lower
            upper = mean + tolerance_hu if upper is None else upper
        if lower > upper:
            raise MaskError(f"lower {lower:g} HU is above upper {upper:g} HU; give lower ≤ upper")
        lower = max(lower, _OUTSIDE_LIVER / 2)  # never reach the voxels outside the liver
        grown = sitk.ConnectedThreshold(
            ct, seedList=[local_seed], lower=float(lower), upper=float(upper), replaceValue=1
        )
    grown = sitk.Cast(sitk.And(sitk.Cast(grown, sitk.sitkUInt8), inside), sitk.sitkUInt8)

    grown_voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(grown)))
    if grown_voxels == 0:
        raise MaskError(
            f"region growing from {_where(label, seed)} found no voxel; "
            "raise the multiplier/tolerance or give lower and upper HU"
        )
    liver_voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(inside)))
    if grown_voxels > LEAK_WARNING_FRACTION * liver_voxels:
        warnings.warn(
            f"the grown tumour covers {100 * grown_voxels / liver_voxels:.0f}% of the liver and has probably leaked; "
            "lower the multiplier or the tolerance",
            stacklevel=2,
        )
    full = sitk.Image(label.GetSize(), sitk.sitkUInt8)
    full.CopyInformation(label)
    full = sitk.Paste(full, grown, grown.GetSize(), [0, 0, 0], box_start)
    tumour = sitk.Or(structure_mask(label, "tumour"), full)
    return compose(liver, tumour)


# --- geometry helpers -------------------------------------------------------------------------------

def voxel_index(
    image: sitk.Image, point: Sequence[float] | None = None, index: Sequence[int] | None = None
) -> tuple[int, int, int]:
    """The voxel (i, j, k) under a physical LPS ``point`` (mm), or the given ``index``, checked inside the image."""
    if (point is None) == (index is None):
        raise MaskError("give either a point (LPS mm) or a voxel index (i, j, k), not both or neither")
    if point is not None:
        if len(point) != 3:
            raise MaskError(f"point {tuple(point)} is not 3-D; give (x, y, z) in LPS mm")
        continuous = image.TransformPhysicalPointToContinuousIndex([float(p) for p in point])
        voxel = tuple(int(np.floor(c + 0.5)) for c in continuous)  # nearest voxel centre
        where = f"point ({', '.join(f'{p:.1f}' for p in point)}) mm"
    else:
        if len(index) != 3:
            raise MaskError(f"voxel index {tuple(index)} is not 3-D; give (i, j, k)")
        voxel = tuple(int(i) for i in index)
        where = f"voxel index {voxel}"
    size = image.GetSize()
    if not all(0 <= v < s for v, s in zip(voxel, size)):
        raise MaskError(
            f"{where} is outside the image ({size[0]}x{size[1]}x{size[2]} voxels); "
            "pick a point inside the volume (LPS coordinates in mm)"
        )
    return voxel


def radius_in_voxels(image: sitk.Image, radius_mm: float) -> list[int]:
    """A physical radius as a whole number of voxels per axis (rounded; 0 where the voxel is coarser)."""
    if not radius_mm > 0:
        raise MaskError(f"radius {radius_mm} mm is not positive; give a radius in mm (e.g. 2.0)")
    radius = [int(round(radius_mm / s)) for s in image.GetSpacing()]
    if max(radius) == 0:
        raise MaskError(
            f"radius {radius_mm} mm is below half the smallest voxel size ({min(image.GetSpacing()):.2f} mm); "
            "give a larger radius"
        )
    return radius


def _checked(label: sitk.Image) -> sitk.Image:
    return check_label(label, name="label map")  # a UInt8 copy with values 0/1/2


def _replace(label: sitk.Image, structure: str, mask: sitk.Image) -> sitk.Image:
    """``label`` with ``structure`` replaced by ``mask`` (the other structure kept consistent)."""
    if structure == "liver":
        return compose(mask, structure_mask(label, "tumour"))  # tumour outside the new liver goes
    liver = structure_mask(label, "liver")
    return compose(liver, mask)  # the tumour stays inside the liver


def _where(image: sitk.Image, voxel: tuple[int, int, int]) -> str:
    point = image.TransformIndexToPhysicalPoint(voxel)
    return f"({', '.join(f'{p:.1f}' for p in point)}) mm (voxel {voxel})"


def _bounding_box(mask: sitk.Image) -> tuple[list[int], list[int]]:
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    box = stats.GetBoundingBox(1)
    return list(box[:3]), list(box[3:])


def _neighbourhood_inside(inside: sitk.Image, seed: tuple[int, int, int], radius: int) -> int:
    """Shrink the seed neighbourhood until it lies inside the liver, so its statistics are liver CT only."""
    while radius > 0 and not np.all(_box_around(inside, seed, radius)):
        radius -= 1
    return radius


def _neighbourhood_mean(ct: sitk.Image, seed: tuple[int, int, int], radius: int) -> float:
    return float(np.mean(_box_around(ct, seed, radius)))


def _box_around(image: sitk.Image, seed: tuple[int, int, int], radius: int) -> np.ndarray:
    """The voxels in the box of half-width ``radius`` voxels around ``seed``, clipped to the image."""
    start = [max(s - radius, 0) for s in seed]
    stop = [min(s + radius + 1, n) for s, n in zip(seed, image.GetSize())]
    # A copy, not a view: the region image is a temporary.
    return sitk.GetArrayFromImage(sitk.RegionOfInterest(image, [b - a for a, b in zip(start, stop)], start))
