"""Stage 1 of a case: load both phases and the mask onto the AP grid, segment when there is no mask, and
pick the three largest tumour slices."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from ..errors import MaskError
from ..io import Case, label_volumes_ml, load_case
from ..progress import ProgressCallback, Reporter, reporter
from ..slices import SliceArea, largest_tumour_slices

GIVEN_MASK = "given"
AUTOMATIC_MASK = "automatic (DELICAITE segmentation network, not reviewed)"


@dataclass
class PreparedCase:
    """A case ready for its features: ``case`` (AP, VP and label map on the AP grid, the alignment),
    where the mask came from, the three largest tumour slices (largest first) and the warnings raised
    on the way. ``slices_problem`` says why there are none (no tumour in the mask)."""

    case: Case
    mask_source: str
    slices: tuple[SliceArea, ...]
    slices_problem: str | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def automatic_mask(self) -> bool:
        return self.mask_source != GIVEN_MASK

    @property
    def single_phase(self) -> bool:
        return bool(self.case.alignment.get("single_phase"))

    def volumes_ml(self) -> dict[str, float]:
        return {k: float(v) for k, v in label_volumes_ml(self.case.label).items()}

    def require_slices(self) -> tuple[SliceArea, ...]:
        """The slices, or the MaskError that says why there are none."""
        if not self.slices:
            raise MaskError(self.slices_problem or "no tumour slices")
        return self.slices


# A tumour whose largest axial slice is smaller than this (a 5 mm square) is a stray voxel, not a lesion
# whose texture the image features could describe.
MIN_TUMOUR_SLICE_MM2 = 25.0


def prepare_case(ap, vp=None, mask=None, *, device: str = "cpu", tumour_seeds_ras=(),
                 progress: ProgressCallback | Reporter | None = None) -> PreparedCase:
    """``ap``/``vp``/``mask``: paths (DICOM folder, NIfTI, NRRD; a 3D-IRCADb folder for the mask) or
    SimpleITK images. ``vp`` None (or the AP again) is a single-phase case. Without a mask the AP phase
    is auto-segmented on ``device`` and the automatic liver must pass the plausibility gate (MaskError
    otherwise: no case goes on with a stomach or a pelvis for a liver). ``tumour_seeds_ras``: points
    (mm, RAS) each growing a tumour in the liver, given or automatic."""
    say = reporter(progress)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        say("loading the CT" + (" (single phase)" if vp is None else ""), 0.0)
        case = load_case(ap, ap if vp is None else vp, mask)
        source = GIVEN_MASK
        if case.label is None:
            say("no mask: auto-segmenting liver and tumour on the AP phase (review it before use)", 0.1)
            from ..segmentation.backends import automatic_mask

            automatic = automatic_mask(case.ap, device=device, tumour_seeds_ras=tumour_seeds_ras,
                                       progress=say.part(0.1, 0.9))
            if not automatic.review.plausible:
                raise MaskError(automatic.review.message())
            case.label = automatic.label
            source = AUTOMATIC_MASK
        elif tumour_seeds_ras:
            from ..segmentation.backends import grow_seeded_tumours

            case.label = grow_seeded_tumours(case.ap, case.label, tumour_seeds_ras)
        say("picking the three largest tumour slices", 0.95)
        slices, problem = (), None
        try:
            slices = tuple(largest_tumour_slices(case.label))
        except MaskError as err:
            problem = str(err)
        if slices and slices[0].area_mm2 < MIN_TUMOUR_SLICE_MM2:
            problem = (f"the tumour's largest slice is {slices[0].area_mm2:.1f} mm² (at least {MIN_TUMOUR_SLICE_MM2:.0f} "
                       "mm² are needed to describe it): check the tumour in the mask")
            slices = ()
    noted = user_warnings(caught)
    if tumour_seeds_ras:  # the user seeded the tumours: the withheld automatic one asks nothing more
        noted = tuple(m for m in noted if not m.startswith("automatic tumour withheld"))
    if problem and any(m.startswith("automatic tumour withheld") for m in noted):
        problem = ("no tumour to take slices from: the automatic tumour is withheld (see the warning); "
                   "draw the tumour and pass the mask, or seed each lesion with --tumour-seed R,A,S")
    for message in noted:
        say(f"warning: {message}")
    return PreparedCase(case, source, slices, problem, noted)


def user_warnings(caught) -> tuple[str, ...]:
    """The messages of the UserWarnings among ``caught`` (what the library tells a user), each once;
    libraries' deprecation notes and numeric chatter are not the user's business."""
    return tuple(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)))
