"""Post-processing of a predicted label map: one liver, without holes or contrast-filled lumens, with
tumour only inside it."""

from __future__ import annotations

import SimpleITK as sitk

from ..io.labels import check_label
from .labelops import compose, fill_holes, largest_component, structure_mask

# A connected region above LUMEN_HU larger than LUMEN_ML inside the liver is a lumen the network took in
# (a stomach with oral contrast, a heart chamber): expert livers hold at most 1 mL of such a region, the
# plausibility gate refuses 10 mL. Its wall goes with it (LUMEN_WALL_MM).
LUMEN_HU = 200.0
LUMEN_ML = 5.0
LUMEN_WALL_MM = 4.0


def postprocess(label: sitk.Image, image: sitk.Image | None = None) -> sitk.Image:
    """Clean a label map (0 background, 1 liver, 2 tumour) and return a new UInt8 one on the same grid.

    1. Keep the largest connected component of the liver (label ≥ 1; tumour counts as liver), so
       islands in the spleen, heart or bowel go.
    2. Fill the liver's enclosed holes (in 3-D and in each axial slice); filled voxels become liver
       parenchyma (1) unless they already are tumour.
    3. With the CT ``image`` (on the label's grid): cut out bright lumens (above :data:`LUMEN_HU`, more than
       :data:`LUMEN_ML`) with their wall, and keep the largest component again.
    4. Tumour survives only inside the kept liver (tumour in a dropped island becomes background).

    An empty label map comes back empty; deciding that "no liver" is an error is the caller's job.
    The input is never modified.
    """
    label = check_label(label, name="predicted label map")  # UInt8 copy, values 0/1/2
    liver = largest_component(structure_mask(label, "liver"))
    liver = fill_holes(liver)
    if image is not None:
        liver = largest_component(remove_bright_lumens(liver, image))
    tumour = sitk.And(structure_mask(label, "tumour"), liver)
    return compose(liver, tumour)


def remove_bright_lumens(liver: sitk.Image, image: sitk.Image) -> sitk.Image:
    """``liver`` without its connected bright regions larger than :data:`LUMEN_ML`, nor their wall."""
    bright = sitk.Cast(image > LUMEN_HU, sitk.sitkUInt8)  # no float copy of a 512² × 900 CT
    bright.CopyInformation(liver)  # same grid up to header rounding
    bright = sitk.And(bright, liver)
    components = sitk.ConnectedComponent(bright, True)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(components)
    large = [k for k in stats.GetLabels() if stats.GetPhysicalSize(k) > LUMEN_ML * 1000.0]
    if not large:
        return liver
    lumens = sitk.Cast(sitk.BinaryThreshold(sitk.ChangeLabel(components, {k: 0 for k in stats.GetLabels()
                                                                          if k not in large}), 1, 2**31), sitk.sitkUInt8)
    radius = [max(1, round(LUMEN_WALL_MM / s)) for s in liver.GetSpacing()]
    walls = sitk.BinaryDilate(lumens, radius)
    return sitk.And(liver, sitk.Cast(walls == 0, sitk.sitkUInt8))
