"""Reading a CT volume (DICOM series folder or a single volume file) as float32 Hounsfield units."""

from __future__ import annotations

import os
from pathlib import Path

import SimpleITK as sitk

from ..errors import ImageError
from .checks import check_ct
from .dicom import read_dicom_series

# Single-file volume formats SimpleITK reads with full geometry (origin, spacing, direction).
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def read_image(path: str | Path) -> sitk.Image:
    """Read a CT volume as a float32 SimpleITK image (LPS, Hounsfield units) and check it is CT.

    ``path`` is a folder holding one DICOM series (files may lack an extension) or a
    .nii/.nii.gz/.nrrd/.nhdr/.mha/.mhd file. Raises ImageError for anything unreadable or not CT-like.
    """
    path = Path(path)
    if path.is_dir():
        image = read_dicom_series(path, sitk.sitkFloat32)
    else:
        image = read_volume_file(path, sitk.sitkFloat32, ImageError)
    check_ct(image, name=path.name or str(path))
    return image


def read_volume_file(path: Path, pixel_type: int | None, error: type[Exception] = ImageError) -> sitk.Image:
    """Read a single volume file of a supported format, raising ``error`` with a one-line message.

    ``pixel_type`` None keeps the file's own voxel type.
    """
    if not path.exists():
        raise error(f"file not found: {path}")
    if not path.name.lower().endswith(VOLUME_SUFFIXES):
        raise error(
            f"unsupported file type: {path.name}; pass a DICOM series folder or one of {', '.join(VOLUME_SUFFIXES)}"
        )
    if not os.access(path, os.R_OK):  # ITK would call an unreadable file "not a valid volume"
        raise error(f"cannot read {path}: permission denied (check the file's permissions)")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise error(f"cannot read {path}: not a valid {_suffix(path)} volume") from err
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise error(
            f"{path.name} has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
            "expected a single-channel volume"
        )
    return image if pixel_type is None else sitk.Cast(image, pixel_type)


def _suffix(path: Path) -> str:
    return next((s for s in VOLUME_SUFFIXES if path.name.lower().endswith(s)), path.suffix)
