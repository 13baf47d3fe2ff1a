"""Which segmenter runs: the bundled DELICAITE network (liver + tumour) or TotalSegmentator (liver only).

Every door (CLI, case workflow, Slicer) calls `automatic_mask`: the backend (`segment_ct`), then the
tumours grown from the user's seeds, then the plausibility gate, so a new backend is added here once and
no door can skip the gate.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from ..errors import DelicaiteError, MaskError
from ..progress import ProgressCallback, Reporter, reporter
from .plausibility import MaskReview, review_liver_mask

BACKENDS = ("delicaite", "totalsegmentator")


def segment_ct(image: sitk.Image, *, backend: str = "delicaite", device: str = "auto", weights=None,
               ct_path: str | Path | None = None, progress: ProgressCallback | Reporter | None = None) -> sitk.Image:
    """Label map (0 background, 1 liver, 2 tumour) of ``image`` on its own grid.

    TotalSegmentator reads files: it gets ``ct_path`` when the image came from one, else a temporary
    NIfTI of ``image``.
    """
    if backend == "delicaite":
        from .inference import segment

        return segment(image, weights=weights, device=device, progress=progress)
    if backend == "totalsegmentator":
        from .totalsegmentator import run_totalsegmentator

        with tempfile.TemporaryDirectory(prefix="delicaite-totalseg-") as work:
            if ct_path is None or Path(ct_path).is_dir():  # a DICOM folder is written out as one volume
                ct_path = Path(work) / "ct.nii.gz"
                sitk.WriteImage(image, str(ct_path))
            return run_totalsegmentator(ct_path, Path(work) / "out", device=device, reference=image)
    raise DelicaiteError(f"unknown segmentation backend {backend!r}: choose one of {', '.join(BACKENDS)}")


@dataclass
class AutomaticMask:
    """An automatic label map on the CT's grid and the plausibility gate's verdict on its liver."""

    label: sitk.Image
    review: MaskReview


def automatic_mask(image: sitk.Image, *, backend: str = "delicaite", device: str = "auto", weights=None,
                   ct_path: str | Path | None = None, tumour_seeds_ras: Sequence[Sequence[float]] = (),
                   progress: ProgressCallback | Reporter | None = None) -> AutomaticMask:
    """Segment ``image``, grow a tumour from each seed (patient coordinates in mm, RAS as Slicer shows
    them) and review the liver. The caller decides what an implausible review stops."""
    say = reporter(progress)
    label = segment_ct(image, backend=backend, device=device, weights=weights, ct_path=ct_path,
                       progress=say.part(0.0, 0.85))
    label = grow_seeded_tumours(image, label, tumour_seeds_ras)
    say("checking that the liver mask is plausible", 0.9)
    review = review_liver_mask(image, label)
    say("the liver mask passed the plausibility checks" if review.plausible else "the liver mask is implausible", 1.0)
    return AutomaticMask(label, review)


def grow_seeded_tumours(image: sitk.Image, label: sitk.Image, seeds_ras: Sequence[Sequence[float]]) -> sitk.Image:
    """``label`` with a tumour grown (corrections.grow_tumour_from_seed) from each RAS seed point."""
    from .corrections import grow_tumour_from_seed

    for seed in seeds_ras:
        r, a, s = (float(v) for v in seed)
        try:
            label = grow_tumour_from_seed(image, label, (-r, -a, s))  # SimpleITK works in LPS
        except MaskError as err:
            raise MaskError(f"tumour seed at R,A,S = ({r:g}, {a:g}, {s:g}) mm: {err}") from None
    return label


def parse_seed(text: str) -> tuple[float, float, float]:
    """"R,A,S" in mm (as Slicer shows a point) → a tuple; DelicaiteError that shows the form otherwise."""
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(abs(v) < 1e4 for v in values):
        raise DelicaiteError(f"a tumour seed is three numbers in mm, R,A,S as Slicer shows them (e.g. --tumour-seed=-60.5,12,-140), "
                             f"not {text[:40]!r}")
    return values
