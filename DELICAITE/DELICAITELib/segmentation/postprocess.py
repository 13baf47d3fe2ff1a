"""Post-processing of a predicted label map: one liver, without holes, with tumour only inside it."""

from __future__ import annotations

import SimpleITK as sitk

from ..io.labels import check_label
from .labelops import compose, fill_holes, largest_component, structure_mask


def postprocess(label: sitk.Image) -> sitk.Image:
    """Clean a label map (0 background, 1 liver, 2 tumour) and return a new UInt8 one on the same grid.

    1. Keep the largest connected component of the liver (label ≥ 1; tumour counts as liver), so
       islands in the spleen, heart or bowel go.
    2. Fill the liver's enclosed holes (in 3-D and in each axial slice); filled voxels become liver
       parenchyma (1) unless they already are tumour.
    3. Tumour survives only inside the kept liver (tumour in a dropped island becomes background).

    An empty label map comes back empty; deciding that "no liver" is an error is the caller's job.
    The input is never modified.
    """
    label = check_label(label, name="predicted label map")  # UInt8 copy, values 0/1/2
    liver = largest_component(structure_mask(label, "liver"))
    liver = fill_holes(liver)
    tumour = sitk.And(structure_mask(label, "tumour"), liver)
    return compose(liver, tumour)
