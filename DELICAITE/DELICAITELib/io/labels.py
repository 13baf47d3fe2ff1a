"""Reading and checking label maps: 0 background, 1 liver, 2 tumour, on the grid of their image.

Sources: a NIfTI/NRRD/MetaImage label file, or a 3D-IRCADb mask folder (``MASKS_DICOM`` with one DICOM
series per structure, 255 inside, on the CT slice geometry).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImageError, MaskError
from .checks import describe_extent, overlap_fraction, same_grid
from .dicom import read_dicom_series
from .images import read_volume_file

BACKGROUND, LIVER, TUMOUR = 0, 1, 2
ALLOWED_VALUES = (BACKGROUND, LIVER, TUMOUR)
# 3D-IRCADb layout: <patient>/MASKS_DICOM/<structure>/image_<i>.
IRCADB_MASKS = "MASKS_DICOM"
IRCADB_LIVER = "liver"
IRCADB_TUMOUR_GLOB = "livertumor*"
# Resampling onto the reference: warn when it drops more than MAX_LOST_FRACTION of the labelled volume,
# refuse above MAX_DROPPED_FRACTION (the mask does not belong to this CT, or its header is wrong).
MAX_LOST_FRACTION = 0.01
MAX_DROPPED_FRACTION = 0.1


def read_label(path: str | Path, reference: sitk.Image | None = None) -> sitk.Image:
    """Read a label map as UInt8 with values 0/1/2, optionally placed on ``reference``'s grid.

    ``path`` is a label volume file or a 3D-IRCADb folder (the patient folder or its MASKS_DICOM):
    MASKS_DICOM/liver becomes 1 and every MASKS_DICOM/livertumor* becomes 2 (tumour wins).
    With ``reference``, see :func:`check_label`. Raises MaskError for bad values or geometry.
    """
    path = Path(path)
    if path.is_dir():
        label = _read_ircadb_masks(path)
    else:
        label = read_volume_file(path, None, MaskError)  # keep the file's type so 7 or 2.5 are seen
    return check_label(label, reference, name=path.name or str(path))


def check_label(label: sitk.Image, reference: sitk.Image | None = None, name: str = "label map") -> sitk.Image:
    """Validate a label map and return it as UInt8 (0/1/2), on ``reference``'s grid when given.

    A label on the same grid (within header rounding) takes the reference's exact geometry. A label on
    another grid of the same physical region is resampled with nearest neighbour onto the reference
    (labelled voxels falling outside it are dropped with a warning). No overlap → MaskError.
    """
    if label.GetDimension() != 3:
        raise MaskError(f"{name} is {label.GetDimension()}-D; expected a 3-D label map on the CT grid")
    if label.GetNumberOfComponentsPerPixel() != 1:
        raise MaskError(
            f"{name} has {label.GetNumberOfComponentsPerPixel()} components per voxel; "
            "expected one label value per voxel"
        )
    _check_values(label, name)
    label = sitk.Cast(label, sitk.sitkUInt8)  # a new image: the caller's keeps its own header
    if reference is None:
        return label
    if same_grid(label, reference):
        label.CopyInformation(reference)
        return label
    return _resample_onto(label, reference, name)


def _resample_onto(label: sitk.Image, reference: sitk.Image, name: str) -> sitk.Image:
    """Nearest-neighbour resampling of a label onto the reference grid, refusing disjoint regions, lost
    headers and masks that lose more than :data:`MAX_DROPPED_FRACTION` of their volume on the way."""
    if overlap_fraction(reference, label) == 0.0:
        raise MaskError(
            f"{name} does not overlap the image: label spans {describe_extent(label)}, image spans "
            f"{describe_extent(reference)}; use the mask made on this CT"
        )
    _refuse_lost_header(label, reference, name)
    before = _labelled_volume_mm3(label)
    resampled = sitk.Resample(label, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    after = _labelled_volume_mm3(resampled)
    if before > 0 and after == 0:
        raise MaskError(
            f"{name} has no labelled voxel inside the image region {describe_extent(reference)}; "
            "use the mask made on this CT"
        )
    lost = (before - after) / before if before > 0 else 0.0
    if lost > MAX_DROPPED_FRACTION:
        raise MaskError(
            f"{name}: {100 * lost:.0f}% of its labelled volume falls outside the image "
            f"(mask spans {describe_extent(label)}, image {describe_extent(reference)}; at most "
            f"{100 * MAX_DROPPED_FRACTION:.0f}% may): check its spacing and origin, or use the mask made on this CT"
        )
    if lost > MAX_LOST_FRACTION:
        warnings.warn(f"{name}: {100 * lost:.0f}% of the labelled volume lies outside the image and was dropped",
                      stacklevel=3)
    offset = float(np.linalg.norm(np.subtract(label.GetOrigin(), reference.GetOrigin())))
    warnings.warn(f"{name} lies on another grid than the image (origin {offset:.1f} mm away, spacing "
                  f"{_fmt_spacing(label)} mm against {_fmt_spacing(reference)}): resampled onto it", stacklevel=3)
    return resampled


def _refuse_lost_header(label: sitk.Image, reference: sitk.Image, name: str) -> None:
    """A mask with the image's voxel count and spacing but another origin, or with the header an array gets
    by default (1 mm, origin 0, identity) where the image has another, was not made on this image's grid."""
    if label.GetSize() != reference.GetSize():
        return
    origin_mm = float(np.linalg.norm(np.subtract(label.GetOrigin(), reference.GetOrigin())))
    default_header = (np.allclose(label.GetSpacing(), 1.0) and np.allclose(label.GetOrigin(), 0.0)
                      and np.allclose(label.GetDirection(), np.eye(3).ravel()))
    same_spacing = (np.allclose(label.GetSpacing(), reference.GetSpacing(), rtol=1e-4)
                    and np.allclose(label.GetDirection(), reference.GetDirection(), atol=1e-4))
    if default_header:
        raise MaskError(
            f"{name} has the image's {label.GetSize()[0]}x{label.GetSize()[1]}x{label.GetSize()[2]} voxels but a default "
            f"header (spacing 1 mm, origin 0) where the image has spacing {_fmt_spacing(reference)} mm: its geometry "
            "was lost when it was written; write the mask with the CT's header (spacing, origin, direction)"
        )
    if same_spacing and origin_mm > 0.5 * min(reference.GetSpacing()):
        raise MaskError(
            f"{name} has the image's size and spacing but its origin is {origin_mm:.1f} mm away: it was made on "
            "another image or its header was edited; use the mask made on this CT (or resample it onto this CT yourself)"
        )


def _fmt_spacing(image: sitk.Image) -> str:
    return "×".join(f"{s:.2f}" for s in image.GetSpacing())


def _check_values(label: sitk.Image, name: str) -> None:
    """Raise MaskError unless every voxel is 0, 1 or 2."""
    values = sitk.GetArrayViewFromImage(label)
    low, high = values.min(), values.max()
    in_range = low >= 0 and high <= max(ALLOWED_VALUES)
    if in_range and (values.dtype.kind in "iub" or np.array_equal(values, np.rint(values))):
        return
    found = _value_summary(values)
    raise MaskError(
        f"{name} has label values {found}; expected only 0 background, 1 liver, 2 tumour (relabel the mask)"
    )


def _value_summary(values: np.ndarray, limit: int = 8) -> str:
    """The distinct values of an array, shortened for a message."""
    distinct = np.unique(values)
    shown = ", ".join(f"{v:g}" for v in distinct[:limit])
    return shown + (f", … ({distinct.size} distinct)" if distinct.size > limit else "")


def label_volumes_ml(label: sitk.Image) -> dict[str, float]:
    """Liver (label >= 1, tumour included) and tumour (label 2) volumes in mL, from the spacing."""
    voxel_ml = float(np.prod(label.GetSpacing())) / 1000.0
    values = sitk.GetArrayViewFromImage(label)
    return {"liver_ml": voxel_ml * np.count_nonzero(values >= LIVER),
            "tumour_ml": voxel_ml * np.count_nonzero(values == TUMOUR)}


def _labelled_volume_mm3(label: sitk.Image) -> float:
    voxel = float(np.prod(label.GetSpacing()))
    return voxel * np.count_nonzero(sitk.GetArrayViewFromImage(label))


def _read_ircadb_masks(folder: Path) -> sitk.Image:
    """Combine 3D-IRCADb mask series: liver → 1, each livertumor* → 2 (tumour wins)."""
    masks = folder / IRCADB_MASKS if (folder / IRCADB_MASKS).is_dir() else folder
    liver_dir = masks / IRCADB_LIVER
    if not liver_dir.is_dir():
        raise MaskError(
            f"no 3D-IRCADb liver mask in {folder}: expected {IRCADB_MASKS}/{IRCADB_LIVER}/ (or pass a label file)"
        )
    liver = _read_mask_series(liver_dir)
    label = sitk.Cast(liver > 0, sitk.sitkUInt8)  # 1 inside the liver
    for tumour_dir in sorted(p for p in masks.glob(IRCADB_TUMOUR_GLOB) if p.is_dir()):
        tumour = _read_mask_series(tumour_dir)
        if not same_grid(tumour, liver):
            raise MaskError(
                f"{tumour_dir.name} is not on the grid of {IRCADB_LIVER} in {masks}; "
                "the IRCADb masks must share one grid"
            )
        tumour.CopyInformation(liver)
        label = sitk.Mask(label, tumour == 0, outsideValue=TUMOUR)  # tumour wins over liver
    return label


def _read_mask_series(folder: Path) -> sitk.Image:
    try:
        return read_dicom_series(folder, sitk.sitkUInt8)
    except ImageError as err:  # same problem, reported as a mask problem
        raise MaskError(str(err)) from err
