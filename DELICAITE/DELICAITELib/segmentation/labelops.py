"""Binary mask operations on label maps (0 background, 1 liver, 2 tumour) shared by post-processing,
the correction helpers and the metrics.

"The liver" is label ≥ 1 (tumour counts as liver); "the tumour" is label 2. Every function returns a
new image on the grid of its input and never modifies the input.
"""

from __future__ import annotations

import SimpleITK as sitk

from ..errors import MaskError
from ..io.labels import LIVER, TUMOUR

STRUCTURES = ("liver", "tumour")


def structure_mask(label: sitk.Image, structure: str) -> sitk.Image:
    """UInt8 0/1 mask of ``structure``: "liver" (label ≥ 1) or "tumour" (label 2)."""
    check_structure(structure)
    mask = label >= LIVER if structure == "liver" else label == TUMOUR
    return sitk.Cast(mask, sitk.sitkUInt8)


def check_structure(structure: str) -> None:
    if structure not in STRUCTURES:
        raise MaskError(f"unknown structure {structure!r}; use one of {', '.join(STRUCTURES)}")


def largest_component(mask: sitk.Image) -> sitk.Image:
    """The largest connected component of a 0/1 mask (26-connected, so diagonal bridges hold)."""
    components = sitk.ConnectedComponent(mask, True)
    # Relabel sorts by size: label 1 is the largest. An empty mask stays empty.
    largest = sitk.RelabelComponent(components, sortByObjectSize=True) == 1
    return sitk.Cast(largest, sitk.sitkUInt8)


def fill_holes(mask: sitk.Image, slice_wise: bool = True) -> sitk.Image:
    """Fill the enclosed holes of a 0/1 mask in 3-D and, with ``slice_wise``, in each axial slice.

    Axial filling also closes holes that a 3-D fill misses because they open through the slice above
    or below (typical of network output on thick slices).
    """
    filled = sitk.BinaryFillhole(mask, fullyConnected=False, foregroundValue=1)
    if not slice_wise:
        return filled
    slices = [sitk.BinaryFillhole(filled[:, :, z], fullyConnected=False, foregroundValue=1)
              for z in range(filled.GetSize()[2])]
    stacked = sitk.JoinSeries(slices)
    stacked.CopyInformation(filled)
    return sitk.Cast(stacked, sitk.sitkUInt8)


def compose(liver: sitk.Image, tumour: sitk.Image) -> sitk.Image:
    """Label map from a liver and a tumour mask: tumour (2) only where it is inside the liver, else 1/0."""
    label = sitk.Cast(liver > 0, sitk.sitkUInt8)  # 1 inside the liver
    inside_tumour = sitk.And(sitk.Cast(tumour > 0, sitk.sitkUInt8), label)
    return sitk.Cast(label + inside_tumour, sitk.sitkUInt8)  # 1 + 1 = 2 where tumour
