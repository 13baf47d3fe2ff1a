"""Reading one DICOM series from a folder with SimpleITK's GDCM series reader.

GDCM finds DICOM files whether or not they have an extension (3D-IRCADb's ``image_0``) and sorts the
slices by their position along the slice normal, so the volume's third axis is in spatial order.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from ..errors import ImageError

# How many trailing UID characters identify a series in messages (full UIDs are ~60 characters).
_UID_SUFFIX = 8
# DICOM objects that are not image slices (segmentations, structure sets, reports, registrations).
NON_IMAGE_MODALITIES = ("SEG", "RTSTRUCT", "SR", "REG", "PR", "KO", "RTPLAN", "RTDOSE")
# Image Position (Patient); slice gaps differing from the median by more than 10% mean a gap or duplicate.
_POSITION_TAG = "0020|0032"
UNEVEN_TOLERANCE = 0.1


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM series found in a folder: its UID, description and modality (may be empty), file names."""

    uid: str
    description: str
    modality: str
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
        series.append(SeriesInfo(uid, *_description_and_modality(files[0]), files))
    return series


def read_dicom_series(folder: str | Path, pixel_type: int = sitk.sitkFloat32) -> sitk.Image:
    """Read the single DICOM series in ``folder`` as one volume of ``pixel_type``.

    Raises ImageError when the folder holds no series or more than one (the message lists them).
    Rescale slope/intercept are applied by the reader, so CT comes out in Hounsfield units.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"DICOM folder not found: {folder}")
    series = list_series(folder)
    if not series:
        subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir())
        hint = f"; its subfolders are {', '.join(subfolders)}" if subfolders else ""
        raise ImageError(
            f"no DICOM series found in folder {folder}{hint}: pass the folder that holds one series' slice files"
        )
    if len(series) > 1:
        listed = "; ".join(s.summary() for s in series)
        raise ImageError(
            f"folder {folder} holds {len(series)} DICOM series ({listed}): pass one series folder "
            "(move each series into its own folder)"
        )
    if series[0].modality in NON_IMAGE_MODALITIES:
        raise ImageError(
            f"folder {folder} holds a DICOM {series[0].modality} object, not image slices: pass the folder of the CT series"
        )
    # Damaged slices are left out here, whatever the GDCM release does with them (SimpleITK 2.5.2, Slicer
    # 5.10's, reads a truncated slice without a word); the gap they leave is then refused, naming them.
    files = tuple(f for f in series[0].files if _pixel_data_complete(f))
    if not files:
        raise ImageError(f"no DICOM slice in {folder} holds its whole pixel data: the files are damaged")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(one_acquisition(files, folder)))
    reader.SetOutputPixelType(pixel_type)
    reader.MetaDataDictionaryArrayUpdateOn()  # keep each slice's position for the spacing check
    try:
        image = reader.Execute()
    except RuntimeError as err:
        first_line = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown reader error"
        raise ImageError(f"cannot read the DICOM series in {folder}: {first_line}") from err
    _check_slice_gaps(reader, image, folder, files)
    return image


def _pixel_data_complete(path: str) -> bool:
    """The file parses and holds all the pixel bytes its header promises (any bytes when compressed)."""
    try:
        dataset = pydicom.dcmread(path)
        data = dataset.PixelData
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        if syntax is not None and syntax.is_compressed:
            return len(data) > 0
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        expected = (int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1)) * frames
                    * int(dataset.BitsAllocated) // 8)
    except Exception:  # noqa: BLE001 — any parse failure means a damaged slice
        return False
    return len(data) >= expected


# A series with a slice gap is refused unless the user asks to read it anyway (`delicaite
# --allow-slice-gaps`): the volume would assume one z spacing and stretch everything after the gap.
_ALLOW_GAPS = {"value": False}


def allow_slice_gaps(value: bool = True) -> None:
    """Read DICOM series with uneven slice gaps (a warning records the gap) instead of refusing them."""
    _ALLOW_GAPS["value"] = bool(value)


def one_acquisition(files: tuple[str, ...], folder: Path) -> tuple[str, ...]:
    """The slices of one volume: a series may stack two acquisitions at the same slice positions (HCC_002's
    arterial phase holds two), which read as one would give a body repeated along z. Then the first
    acquisition is read, with a warning; duplicates that no acquisition number explains are refused."""
    headers = [_position_and_acquisition(f) for f in files]
    if any(h is None for h in headers):
        return files  # an unreadable header: GDCM's reader and the spacing check speak for it
    positions = np.round([h[0] for h in headers], 2)
    if len(set(positions)) == len(files):
        return files
    groups: dict[str, list[int]] = {}
    for index, (_, number) in enumerate(headers):
        groups.setdefault(number, []).append(index)
    if len(groups) > 1 and all(len(set(positions[i])) == len(i) for i in groups.values()):
        first = sorted(groups, key=lambda n: (len(n), n))[0]
        warnings.warn(
            f"DICOM series in {folder} holds {len(groups)} acquisitions at the same slice positions "
            f"(acquisition numbers {', '.join(sorted(groups, key=lambda n: (len(n), n)))}): read acquisition {first} "
            f"({len(groups[first])} slices); put another acquisition's files in a folder of their own to read it",
            stacklevel=3,
        )
        return tuple(files[i] for i in groups[first])
    duplicated = len(files) - len(set(positions))
    raise ImageError(
        f"DICOM series in {folder} has {duplicated} slice(s) at a position another slice already holds, and "
        "no acquisition number tells them apart: remove the duplicated files (or split the series) and try again"
    )


def _position_and_acquisition(path: str) -> tuple[float, str] | None:
    """(position along the slice normal in mm, AcquisitionNumber as text) of one file; None if unreadable."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[
            "ImagePositionPatient", "ImageOrientationPatient", "AcquisitionNumber"])
        orientation = np.asarray(header.ImageOrientationPatient, dtype=float)
        normal = np.cross(orientation[:3], orientation[3:])
        position = float(np.asarray(header.ImagePositionPatient, dtype=float) @ normal)
    except Exception:  # missing tags or a damaged file: leave the decision to the reader
        return None
    return position, str(header.get("AcquisitionNumber", "")).strip()


def _check_slice_gaps(reader: sitk.ImageSeriesReader, image: sitk.Image, folder: Path, series_files) -> None:
    """Refuse (or, when allowed, warn about) a gap between slices that differs from the typical one by
    more than 10 %: a missing slice, or one GDCM could not read and left out. Names the gap and the files."""
    names = reader.GetFileNames()
    count = len(names)
    if count < 3 or not all(reader.HasMetaDataKey(i, _POSITION_TAG) for i in range(count)):
        return
    normal = np.array(image.GetDirection()).reshape(3, 3)[:, 2]
    positions = np.array([np.array(reader.GetMetaData(i, _POSITION_TAG).split("\\"), dtype=float)
                          for i in range(count)]) @ normal
    gaps = np.abs(np.diff(positions))
    typical = float(np.median(gaps))
    uneven = np.flatnonzero(np.abs(gaps - typical) > UNEVEN_TOLERANCE * typical)
    if not uneven.size:
        return
    k = int(uneven[0])
    where = (f"{gaps[k]:.2f} mm between {Path(names[k]).name} ({positions[k]:.1f} mm) and {Path(names[k + 1]).name} "
             f"({positions[k + 1]:.1f} mm), where slices are {typical:.2f} mm apart")
    if uneven.size > 1:
        where += f"; {uneven.size - 1} more uneven gap(s)"
    left_out = _left_out_files(folder, series_files)
    if left_out:
        where += f"; left out as unreadable: {', '.join(left_out[:3])}" + (" …" if len(left_out) > 3 else "")
    if not _ALLOW_GAPS["value"]:
        raise ImageError(
            f"DICOM series in {folder} has a slice gap: {where}. A slice is missing or damaged: restore it, or "
            "read the series anyway with `delicaite --allow-slice-gaps …` (the volume then assumes one spacing)"
        )
    warnings.warn(f"DICOM series in {folder} read with a slice gap ({where}): the volume assumes "
                  f"{image.GetSpacing()[2]:.2f} mm between slices", stacklevel=3)


def _left_out_files(folder: Path, series_files) -> list[str]:
    """Files in ``folder`` that the series reader left out (truncated, empty or foreign files)."""
    in_series = {Path(f).name for f in series_files}
    return [path.name for path in sorted(Path(folder).iterdir())
            if path.is_file() and not path.name.startswith(".") and path.name not in in_series]


def _description_and_modality(path: str) -> tuple[str, str]:
    """SeriesDescription and Modality of one file, "" when absent or unreadable."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesDescription", "Modality"])
    except Exception:  # GDCM read the file already; these tags only refine messages
        return "", ""
    return str(header.get("SeriesDescription", "")).strip(), str(header.get("Modality", "")).strip().upper()
