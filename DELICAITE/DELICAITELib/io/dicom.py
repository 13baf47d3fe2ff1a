"""Reading one DICOM series from a folder with SimpleITK's GDCM series reader.

GDCM finds DICOM files whether or not they have an extension (3D-IRCADb's ``image_0``) and sorts the
slices by their position along the slice normal, so the volume's third axis is in spatial order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
import SimpleITK as sitk

from ..errors import ImageError

# How many trailing UID characters identify a series in messages (full UIDs are ~60 characters).
_UID_SUFFIX = 8


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM series found in a folder: its UID, description (may be empty) and file names."""

    uid: str
    description: str
    files: tuple[str, ...]

    def summary(self) -> str:
        """``…12345678 "Recon 2" (69 files)`` for messages."""
        text = f"…{self.uid[-_UID_SUFFIX:]}"
        if self.description:
            text += f' "{self.description}"'
        return f"{text} ({len(self.files)} files)"


def list_series(folder: str | Path) -> list[SeriesInfo]:
    """The DICOM series directly inside ``folder`` (not its subfolders), slices of each sorted by position."""
    folder = str(folder)
    series = []
    for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder):
        files = tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid))
        series.append(SeriesInfo(uid, _description(files[0]), files))
    return series


def read_dicom_series(folder: str | Path, pixel_type: int = sitk.sitkFloat32) -> sitk.Image:
    """Read the single DICOM series in ``folder`` as one volume of ``pixel_type``.

    Raises ImageError when the folder holds no series or more than one (the message lists them).
    Rescale slope/intercept are applied by the reader, so CT comes out in Hounsfield units.
    """
    folder = Path(folder)
    series = list_series(folder)
    if not series:
        subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir())
        hint = f"; its subfolders are {', '.join(subfolders)}" if subfolders else ""
        raise ImageError(f"no DICOM series found in folder {folder}{hint}: pass the folder that holds one series' slice files")
    if len(series) > 1:
        listed = "; ".join(s.summary() for s in series)
        raise ImageError(
            f"folder {folder} holds {len(series)} DICOM series ({listed}): pass one series folder "
            "(move each series into its own folder)"
        )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(series[0].files))
    reader.SetOutputPixelType(pixel_type)
    try:
        return reader.Execute()
    except RuntimeError as err:
        first_line = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown reader error"
        raise ImageError(f"cannot read the DICOM series in {folder}: {first_line}") from err


def _description(path: str) -> str:
    """SeriesDescription of one file, or "" when absent or unreadable (only used in messages)."""
    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesDescription"]).get("SeriesDescription", "")).strip()
    except Exception:  # a description is a nicety; never fail because of it
        return ""
