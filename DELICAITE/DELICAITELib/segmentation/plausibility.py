"""Is an automatic liver mask a liver? The gate that runs after every automatic segmentation.

A network trained on few volumes can label the contrast-filled stomach, the heart or pelvic bowel as
liver and still return a liver-sized mask. These checks use what any CT shows (HU and the lungs, see
:mod:`.anatomy`), so they hold whichever backend made the mask:

- **volume**: a whole liver is 0.6–4 L (large HCC included); a liver cut by the field of view is only
  held to the upper bound;
- **no contrast-filled lumen inside**: the largest connected region above 200 HU inside the mask is at
  most 10 mL (expert masks hold at most 1 mL: vessels are thin; a stomach with oral contrast is 50+ mL);
- **position**: the liver's dome touches the lung bases, so a mask ending more than 50 mm below them is
  bowel or pelvis; a CT without any lung in view cannot show where the liver should be; no more than
  20 mL of the mask may lie above lung in the same column (above the diaphragm); the top 30 mm of the
  mask lies mostly on the patient's right, where the liver's dome is (the heart sits left of the midline,
  and a network that takes it in puts the mask's top there: HCC_006);
- **one main component**: the largest connected part holds at least 90 % of the mask.

An implausible mask is never passed on silently: `segment` marks it, `case` and `batch` refuse to
recommend on it, the Segment module shows the problems beside the views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .anatomy import Anatomy, read_anatomy

WHOLE_LIVER_ML = (600.0, 4000.0)
BRIGHT_HU = 200.0
MAX_BRIGHT_ML = 10.0
MAX_BELOW_LUNGS_MM = 50.0
MAX_ABOVE_DIAPHRAGM_ML = 20.0
# Share of the mask's top slab left of the body's midline: 0.00-0.30 on the reference and by-eye-correct
# livers of ../shared/data (IRCADb-17 expert 0.30), 0.83 on HCC_006's mask that holds the heart.
TOP_SLAB_MM = 30.0
MAX_TOP_LEFT_SHARE = 0.5
MIN_MAIN_COMPONENT_SHARE = 0.9
WHAT_TO_DO = "review and correct it in the Segment module, or draw the liver and tumour, and pass that mask"


@dataclass(frozen=True)
class MaskReview:
    """The gate's verdict on one liver mask: the problems found (none: plausible) and the figures."""

    problems: tuple[str, ...]
    figures: dict = field(default_factory=dict)

    @property
    def plausible(self) -> bool:
        return not self.problems

    def message(self) -> str:
        """One line for a user: what is wrong and what to do."""
        if self.plausible:
            return "the automatic liver mask passed the plausibility checks"
        return f"the automatic liver mask is implausible ({'; '.join(self.problems)}): {WHAT_TO_DO}"

    def to_dict(self) -> dict:
        return {"plausible": self.plausible, "problems": list(self.problems), "figures": dict(self.figures)}

    @classmethod
    def read(cls, path) -> MaskReview | None:
        """The review `segment` wrote at ``path``, or None when there is none (an older run, another tool)."""
        import json

        try:
            record = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(tuple(str(p) for p in record["problems"]), dict(record.get("figures", {})))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def review_path(label_path) -> Path:
    """Where `segment` writes the review of ``label_path``: SEG.nii.gz → SEG.review.json beside it."""
    label_path = Path(label_path)
    name = label_path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return label_path.with_name(f"{name}.review.json")


def review_liver_mask(image: sitk.Image, label: sitk.Image, anatomy: Anatomy | None = None) -> MaskReview:
    """Check the liver (label >= 1) of ``label`` (on ``image``'s grid) against the CT ``image``."""
    anatomy = anatomy or read_anatomy(image)
    liver = anatomy.on_grid(label) >= 1
    figures: dict = {}
    problems: list[str] = []
    liver_ml = float(liver.sum() * anatomy.voxel_ml)
    figures["liver_ml"] = round(liver_ml, 1)
    if not liver.any():
        return MaskReview(("no liver in the mask",), figures)

    slices = np.flatnonzero(liver.any(axis=(1, 2)))
    cut = bool(_touches_field_of_view_end(anatomy, slices))
    figures["cut_by_field_of_view"] = cut
    low, high = WHOLE_LIVER_ML
    if liver_ml > high:
        problems.append(f"{liver_ml / 1000:.1f} L of liver, more than any liver ({high / 1000:.0f} L): "
                        "it takes in neighbouring organs")
    elif liver_ml < low and not cut:
        problems.append(f"{liver_ml:.0f} mL of liver, although the whole liver is in view (a liver is at least {low:.0f} mL)")

    bright_ml = largest_bright_region_ml(image, label)
    figures["largest_bright_region_ml"] = round(bright_ml, 1)
    if bright_ml > MAX_BRIGHT_ML:
        problems.append(f"a {bright_ml:.0f} mL region above {BRIGHT_HU:.0f} HU inside it (contrast-filled stomach, "
                        f"bowel or heart; at most {MAX_BRIGHT_ML:.0f} mL of vessels belong to a liver)")

    base = anatomy.lung_base_z()
    spacing_z = anatomy.grid.GetSpacing()[2]
    if base is None:
        figures["lungs_in_view"] = False
        problems.append("no lung base in the field of view, so nothing shows where the liver should be "
                        "(the CT must cover the liver's dome)")
    else:
        figures["lungs_in_view"] = True
        below_mm = float((base - slices.max()) * spacing_z)
        figures["liver_top_below_lung_base_mm"] = round(below_mm, 1)
        if below_mm > MAX_BELOW_LUNGS_MM:
            problems.append(f"it ends {below_mm:.0f} mm below the lung bases, where the liver's dome should touch "
                            "them (bowel or pelvis?)")
        above_ml = float(_above_diaphragm(liver, anatomy.lungs).sum() * anatomy.voxel_ml)
        figures["above_diaphragm_ml"] = round(above_ml, 1)
        if above_ml > MAX_ABOVE_DIAPHRAGM_ML:
            problems.append(f"{above_ml:.0f} mL of it lies above lung tissue, above the diaphragm")
        left_share = _top_left_share(liver, anatomy, max(1, round(TOP_SLAB_MM / spacing_z)))
        figures["top_slab_left_share"] = round(left_share, 3)
        if left_share > MAX_TOP_LEFT_SHARE:
            problems.append(f"{100 * left_share:.0f} % of its top {TOP_SLAB_MM:.0f} mm lies left of the body's midline, "
                            "where the heart sits (the liver's dome is on the right)")

    share = _main_component_share(liver)
    figures["main_component_share"] = round(share, 3)
    if share < MIN_MAIN_COMPONENT_SHARE:
        problems.append(f"its largest part holds only {100 * share:.0f} % of it (a liver is one piece)")
    return MaskReview(tuple(problems), figures)


def largest_bright_region_ml(image: sitk.Image, label: sitk.Image) -> float:
    """Volume (mL) of the largest connected region above :data:`BRIGHT_HU` inside the liver, full resolution."""
    bright = sitk.And(sitk.Cast(image > BRIGHT_HU, sitk.sitkUInt8), sitk.Cast(label >= 1, sitk.sitkUInt8))
    bright.CopyInformation(label)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.ConnectedComponent(bright, True))
    return max((stats.GetPhysicalSize(k) for k in stats.GetLabels()), default=0.0) / 1000.0


def _touches_field_of_view_end(anatomy: Anatomy, slices: np.ndarray) -> bool:
    """The liver reaches the CT's first or last scanned slice (on the coarse grid, within one voxel)."""
    scanned = np.flatnonzero(anatomy.body.any(axis=(1, 2)))
    return bool(scanned.size) and (slices.min() <= scanned.min() + 1 or slices.max() >= scanned.max() - 1)


def _above_diaphragm(liver: np.ndarray, lungs: np.ndarray) -> np.ndarray:
    """Liver voxels lying above the lowest lung voxel of their own (y, x) column."""
    has_lung = lungs.any(axis=0)
    lowest = np.where(has_lung, lungs.argmax(axis=0), lungs.shape[0])
    z = np.arange(liver.shape[0])[:, None, None]
    return liver & (z > lowest[None])


def _top_left_share(liver: np.ndarray, anatomy: Anatomy, slab: int) -> float:
    """Share of the mask's top ``slab`` slices on the patient's left of the body's midline (x grows leftwards, LPS)."""
    top = int(np.flatnonzero(liver.any(axis=(1, 2))).max())
    left = total = 0
    for z in range(max(0, top - slab + 1), top + 1):
        x = np.nonzero(liver[z])[1]
        left += int((x > anatomy.body_midline_x(z)).sum())
        total += x.size
    return left / total if total else 0.0


def _main_component_share(liver: np.ndarray) -> float:
    components = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(liver.astype(np.uint8)), True))
    sizes = np.bincount(components.ravel())[1:]
    return float(sizes.max() / sizes.sum()) if sizes.size else 0.0
