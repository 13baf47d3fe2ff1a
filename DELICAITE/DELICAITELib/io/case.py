"""One patient's case: arterial (AP) and portal-venous (VP) phase on one grid, and its label map.

The AP grid is the reference. A VP on another grid is resampled onto it (linear interpolation, air
outside); this aligns the scanner geometry only and does not register breathing motion between phases.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImageError, MaskError
from .checks import check_ct, describe_extent, overlap_fraction, same_grid
from .images import read_image
from .labels import check_label, read_label

# Value given to VP voxels that fall outside the VP scan after resampling (air).
OUTSIDE_HU = -1024.0
# The VP must cover at least this fraction of the AP volume: features on fill value are no features.
MIN_COVERED_FRACTION = 0.9
# A liver or tumour whose mean is below this is mostly fat or air: the mask is not on them.
MIN_MASK_MEAN_HU = -100.0

ImageSource = str | Path | sitk.Image


@dataclass
class Case:
    """AP and VP as float32 HU on the AP grid, the label map (UInt8 0/1/2 on the AP grid, or None), and
    ``alignment``: same_grid, vp_resampled, overlap_fraction, origin_offset_mm, spacing_ap, spacing_vp,
    single_phase (the same source was given as AP and VP)."""

    ap: sitk.Image
    vp: sitk.Image
    label: sitk.Image | None = None
    alignment: dict = field(default_factory=dict)


def load_case(ap: ImageSource | None, vp: ImageSource | None, mask: ImageSource | None = None) -> Case:
    """Load both phases (paths or SimpleITK images) and an optional mask onto the AP grid.

    Raises ImageError when a phase is missing or the phases do not overlap in space, MaskError for a
    bad mask. For single-phase data pass the same series as AP and VP.
    """
    if ap is None or vp is None:
        missing = "arterial (AP)" if ap is None else "portal-venous (VP)"
        raise ImageError(
            f"the {missing} phase is missing: both phases are needed "
            "(for single-phase data pass the same series as AP and VP)"
        )
    ap_image = _as_ct(ap, "AP")
    # Single-phase data comes as the same source twice: read it once.
    single_phase = _same_source(ap, vp)
    vp_image = sitk.Image(ap_image) if single_phase else _as_ct(vp, "VP")
    alignment = {**_alignment(ap_image, vp_image), "single_phase": single_phase}
    if not alignment["same_grid"]:
        if alignment["overlap_fraction"] == 0.0:
            raise ImageError(
                f"AP and VP do not overlap in space: AP spans {describe_extent(ap_image)}, VP spans "
                f"{describe_extent(vp_image)}; pass two phases of the same patient and study"
            )
        if alignment["overlap_fraction"] < MIN_COVERED_FRACTION:
            raise ImageError(
                f"the portal-venous phase covers only {100 * alignment['overlap_fraction']:.0f}% of the arterial one "
                f"(at least {100 * MIN_COVERED_FRACTION:.0f}% is needed; AP spans {describe_extent(ap_image)}, VP "
                f"{describe_extent(vp_image)}): pass a VP series that covers the liver and tumour of the AP"
            )
        warnings.warn(f"the portal-venous phase lies on another grid (origin {alignment['origin_offset_mm']:.1f} mm "
                      f"away, {100 * alignment['overlap_fraction']:.0f}% of the AP covered): resampled onto the AP",
                      stacklevel=2)
        vp_image = sitk.Resample(vp_image, ap_image, sitk.Transform(), sitk.sitkLinear, OUTSIDE_HU, sitk.sitkFloat32)
        alignment["vp_resampled"] = True
    else:
        vp_image.CopyInformation(ap_image)  # drop header rounding so later exact comparisons hold
    label = None
    if mask is not None:
        if isinstance(mask, sitk.Image):
            label = check_label(mask, ap_image, name="mask")
        else:
            label = read_label(mask, reference=ap_image)
        alignment["mask_on_ap_grid"] = _mask_on_grid(mask, ap_image)
        alignment["mask_mean_hu"] = check_mask_on_ct(label, ap_image)
    return Case(ap=ap_image, vp=vp_image, label=label, alignment=alignment)


def _mask_on_grid(mask: ImageSource, ap: sitk.Image) -> bool | None:
    """Whether the mask came on the AP's grid (False: it was resampled onto it); None for a mask folder."""
    if isinstance(mask, sitk.Image):
        return same_grid(mask, ap)
    if Path(mask).is_dir():
        return None
    header = sitk.ImageFileReader()  # the file's geometry without its voxels
    header.SetFileName(str(mask))
    header.ReadImageInformation()
    return same_grid(header, ap)


def check_mask_on_ct(label: sitk.Image, ct: sitk.Image) -> dict:
    """Mean HU of the liver (label >= 1) and of the tumour under ``label`` (on ``ct``'s grid); MaskError when
    either is mostly fat or air (below :data:`MIN_MASK_MEAN_HU`): a shifted or foreign mask."""
    stats = sitk.LabelStatisticsImageFilter()
    stats.Execute(ct, label)  # a checked label map: UInt8, 0/1/2
    means = {}
    liver_voxels = sum(stats.GetCount(k) for k in (1, 2) if stats.HasLabel(k))
    if liver_voxels:
        means["liver"] = sum(stats.GetMean(k) * stats.GetCount(k) for k in (1, 2) if stats.HasLabel(k)) / liver_voxels
    if stats.HasLabel(2):
        means["tumour"] = stats.GetMean(2)
    for structure, mean in means.items():
        if mean < MIN_MASK_MEAN_HU:
            raise MaskError(
                f"the mask's {structure} has a mean of {mean:.0f} HU on the arterial phase (fat or air; a {structure} is "
                f"above {MIN_MASK_MEAN_HU:.0f} HU): the mask does not lie on this CT's {structure}; check that it was "
                "made on this CT"
            )
    return {k: round(float(v), 1) for k, v in means.items()}


def _as_ct(source: ImageSource, name: str) -> sitk.Image:
    """A float32 copy of an in-memory image, or the image read from a path; checked as CT either way."""
    if isinstance(source, sitk.Image):
        image = sitk.Cast(source, sitk.sitkFloat32)  # Cast always returns a new image
        check_ct(image, name=name)
        return image
    return read_image(source)


def _same_source(a: ImageSource, b: ImageSource) -> bool:
    if isinstance(a, sitk.Image) or isinstance(b, sitk.Image):
        return a is b
    return _resolved(a) == _resolved(b)


def _resolved(path) -> Path:
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as err:  # Python 3.11 raises RuntimeError for a symlink loop
        raise ImageError(f"{path} cannot be followed to a file ({err}): pass the image's real path") from None


def _alignment(ap: sitk.Image, vp: sitk.Image) -> dict:
    """How the VP grid relates to the AP grid, before any resampling."""
    same = same_grid(ap, vp)
    return {
        "same_grid": same,
        "vp_resampled": False,
        "overlap_fraction": 1.0 if same else overlap_fraction(ap, vp),
        "origin_offset_mm": float(np.linalg.norm(np.subtract(ap.GetOrigin(), vp.GetOrigin()))),
        "spacing_ap": tuple(ap.GetSpacing()),
        "spacing_vp": tuple(vp.GetSpacing()),
    }
