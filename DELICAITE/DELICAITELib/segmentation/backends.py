"""Which segmenter runs: the bundled DELICAITE network (liver + tumour) or TotalSegmentator (liver; its
liver-tumour task on request).

"auto" (the default) prefers TotalSegmentator when it is installed (the command, or the package that
SlicerTotalSegmentator puts into Slicer's Python): it was trained on over a thousand CTs, ours on four. If
it fails under "auto" (no weights offline, out of memory), the embedded network runs instead, and the
review records why. Every door (CLI, case workflow, Slicer) calls `automatic_mask`: the backend
(`segment_ct`), then the tumours grown from the user's seeds, then the plausibility gate, so a new backend
is added here once and no door can skip the gate.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from ..errors import DelicaiteError, MaskError
from ..progress import ProgressCallback, Reporter, reporter
from .plausibility import MaskReview, review_liver_mask

BACKENDS = ("auto", "delicaite", "totalsegmentator")
TUMOUR_POLICIES = ("trusted", "always")
# TotalSegmentator's liver-tumour output has not been scored by this project against reference tumours
# (it cannot be installed with its weights offline), so under "trusted" it is not asked for.
TOTALSEG_TUMOUR_WITHHELD = (
    "automatic tumour withheld: TotalSegmentator's liver tumour (task liver_vessels) was never measured against "
    "reference tumours here; draw the tumour, or seed it with one click per lesion (--tumour-seed R,A,S)"
)


def choose_backend(requested: str = "auto") -> str:
    """The backend that ``requested`` names: "auto" is TotalSegmentator when installed, else ours."""
    if requested not in BACKENDS:
        raise DelicaiteError(f"unknown segmentation backend {requested!r}: choose one of {', '.join(BACKENDS)}")
    if requested != "auto":
        return requested
    from .totalsegmentator import is_installed

    return "totalsegmentator" if is_installed() else "delicaite"


def describe_backend(requested: str = "auto", slicer_extension: bool = False) -> tuple[str, str]:
    """(the backend that will run, one line saying so for a status bar). ``slicer_extension``: the
    SlicerTotalSegmentator module is loaded, whether or not it has installed its Python package yet."""
    backend = choose_backend(requested)
    if backend == "totalsegmentator":
        from .totalsegmentator import NOT_INSTALLED, is_installed

        if not is_installed():
            raise DelicaiteError(NOT_INSTALLED)
        why = " (preferred: it is installed)" if requested == "auto" else ""
        return backend, f"Segmenter: TotalSegmentator{why}; tumour: draw or seed it"
    line = "Segmenter: the embedded DELICAITE network"
    if requested == "auto" and slicer_extension:
        line += ("; the TotalSegmentator extension is present but has not installed its Python package: run its "
                 "module once, then segment here again to use it")
    elif requested == "auto":
        line += " (install TotalSegmentator, or the SlicerTotalSegmentator extension, for a liver model trained on 1,000+ CTs)"
    return backend, line


def segment_ct(image: sitk.Image, *, backend: str = "auto", device: str = "auto", weights=None,
               ct_path: str | Path | None = None, tumour: str = "trusted",
               progress: ProgressCallback | Reporter | None = None) -> sitk.Image:
    """Label map (0 background, 1 liver, 2 tumour) of ``image`` on its own grid.

    TotalSegmentator reads files: it gets ``ct_path`` when the image came from one, else a temporary
    NIfTI of ``image``. ``tumour``: "trusted" keeps an automatic tumour only where its held-out Dice
    was measured and good enough (see ``inference.segment``); "always" keeps whatever the backend found.
    """
    if tumour not in TUMOUR_POLICIES:
        raise DelicaiteError(f"automatic tumour policy must be one of {', '.join(TUMOUR_POLICIES)}, not {tumour!r}")
    backend = choose_backend(backend)
    if weights is not None and backend == "totalsegmentator":
        raise DelicaiteError("--weights are DELICAITE network weights: use them with --backend delicaite")
    if backend == "delicaite":
        from .inference import segment

        return segment(image, weights=weights, device=device, progress=progress, tumour=tumour)
    from .totalsegmentator import run_totalsegmentator

    say = reporter(progress)
    say("running TotalSegmentator (liver" + (" and liver tumour)" if tumour == "always" else ")"), 0.0)
    with tempfile.TemporaryDirectory(prefix="delicaite-totalseg-") as work:
        if ct_path is None or Path(ct_path).is_dir():  # a DICOM folder is written out as one volume
            ct_path = Path(work) / "ct.nii.gz"
            sitk.WriteImage(image, str(ct_path))
        label = run_totalsegmentator(ct_path, Path(work) / "out", device=device, reference=image,
                                     tumour=tumour == "always")
    if tumour == "trusted":
        warnings.warn(TOTALSEG_TUMOUR_WITHHELD, stacklevel=2)
    say("TotalSegmentator finished", 1.0)
    return label


@dataclass
class AutomaticMask:
    """An automatic label map on the CT's grid, the plausibility gate's verdict on its liver, and the
    backend that made it (also in ``review.figures["backend"]``)."""

    label: sitk.Image
    review: MaskReview
    backend: str = "delicaite"


def automatic_mask(image: sitk.Image, *, backend: str = "auto", device: str = "auto", weights=None,
                   ct_path: str | Path | None = None, tumour_seeds_ras: Sequence[Sequence[float]] = (),
                   tumour: str = "trusted", progress: ProgressCallback | Reporter | None = None) -> AutomaticMask:
    """Segment ``image``, grow a tumour from each seed (patient coordinates in mm, RAS as Slicer shows
    them) and review the liver. The caller decides what an implausible review stops."""
    say = reporter(progress)
    # weights are ours: with them, "auto" means the network they belong to
    chosen = "delicaite" if weights is not None and backend == "auto" else choose_backend(backend)
    fallback = None
    try:
        label = segment_ct(image, backend=chosen, device=device, weights=weights, ct_path=ct_path, tumour=tumour,
                           progress=say.part(0.0, 0.85))
    except DelicaiteError as err:
        if backend != "auto" or chosen != "totalsegmentator":
            raise
        fallback = f"TotalSegmentator failed ({err}); the embedded DELICAITE network was used instead"
        say(fallback, 0.05)
        warnings.warn(fallback, stacklevel=2)
        chosen = "delicaite"
        label = segment_ct(image, backend=chosen, device=device, ct_path=ct_path, tumour=tumour,
                           progress=say.part(0.05, 0.85))
    label = grow_seeded_tumours(image, label, tumour_seeds_ras)
    say("checking that the liver mask is plausible", 0.9)
    review = review_liver_mask(image, label)
    review.figures["backend"] = chosen
    if fallback:
        review.figures["backend_fallback"] = fallback
    say("the liver mask passed the plausibility checks" if review.plausible else "the liver mask is implausible", 1.0)
    return AutomaticMask(label, review, chosen)


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
