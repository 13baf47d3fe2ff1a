"""Which segmenter runs: the bundled DELICAITE network (liver + tumour) or TotalSegmentator (liver only).

Every door (CLI, case workflow, Slicer) calls `segment_ct`, so a new backend is added here once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import SimpleITK as sitk

from ..errors import DelicaiteError
from ..progress import ProgressCallback, Reporter

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
