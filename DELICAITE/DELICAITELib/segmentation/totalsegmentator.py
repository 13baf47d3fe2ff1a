"""TotalSegmentator as a liver backend: import its output as our label map, or run it when installed.

TotalSegmentator (Wasserthal et al., Radiology: AI 2023) writes a multi-label NIfTI in which the liver is
label 5 (task "total"), or with its default output a folder of binary masks (``liver.nii.gz``). Its task
"total" has no tumour class; its task "liver_vessels" (1 vessels, 2 liver tumour; full resolution only)
does, and runs only when a tumour is asked for. Its output grid may differ from the CT's (DICOM converted
by dcm2niix, a flipped axis): masks are resampled onto the CT grid in physical space with nearest
neighbour, never copied array to array.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
from pathlib import Path

import SimpleITK as sitk

from ..errors import DelicaiteError, MaskError
from ..io.images import read_image, read_volume_file
from ..io.labels import LIVER, check_label
from .labelops import compose, structure_mask

TOTALSEG_LIVER = 5
TUMOUR_TASK = "liver_vessels"
TUMOUR_TASK_LABEL = 2  # liver_vessels: 1 liver vessels, 2 liver tumour
COMMAND = "TotalSegmentator"
OUTPUT_NAME = "totalseg_liver.nii.gz"
TUMOUR_OUTPUT_NAME = "totalseg_liver_vessels.nii.gz"
NOT_INSTALLED = (
    "TotalSegmentator is not installed: `pip install TotalSegmentator` (it downloads its weights on first use) "
    "or use --backend delicaite"
)


def is_installed() -> bool:
    """The ``TotalSegmentator`` command is on PATH or its Python package can be imported (SlicerTotalSegmentator
    installs the package into Slicer's Python)."""
    if shutil.which(COMMAND) is not None:
        return True
    try:
        return importlib.util.find_spec("totalsegmentator") is not None
    except (ImportError, ValueError):  # a broken or half-removed installation
        return False


def import_totalsegmentator(
    seg: str | Path | sitk.Image, reference: sitk.Image, liver_label: int = TOTALSEG_LIVER
) -> sitk.Image:
    """Our label map (0 background, 1 liver; UInt8) on ``reference``'s grid from a TotalSegmentator result.

    ``seg`` is the multi-label image or its file, or a TotalSegmentator output folder holding
    ``liver.nii.gz`` (then any non-zero voxel is liver). Raises MaskError when it has no liver voxel or
    does not overlap ``reference``.
    """
    name = "TotalSegmentator segmentation"
    if isinstance(seg, (str, Path)):
        seg, liver_label, name = _read_seg(Path(seg), liver_label)
    liver = sitk.Cast(seg == liver_label, sitk.sitkUInt8) * LIVER
    if not _any(liver):
        raise MaskError(
            f"{name} has no liver (label {liver_label}); run TotalSegmentator with the liver in its ROI "
            "(task total) or pass the right liver_label"
        )
    # Same grid: header copied; another grid: nearest-neighbour resampling in physical space, and
    # MaskError when it does not overlap the CT or no liver voxel lands on it.
    return check_label(liver, reference, name=name)


def run_totalsegmentator(
    ct_path: str | Path,
    out_dir: str | Path,
    *,
    fast: bool = True,
    device: str = "cpu",
    reference: sitk.Image | None = None,
    tumour: bool = False,
) -> sitk.Image:
    """Run TotalSegmentator (liver only) on the CT at ``ct_path`` and import its liver onto the CT grid.

    ``tumour``: also run its task "liver_vessels" (full resolution, minutes more) and label its liver
    tumour 2, inside the liver only.

    Uses the ``TotalSegmentator`` command when it is on PATH (a separate process: its memory and GPU are
    freed when it ends), else the Python API ``totalsegmentator.python_api.totalsegmentator``. ``fast``
    selects its 3 mm model; ``device`` is "cpu", "cuda"/"gpu" (optionally ":N"), "mps" or "auto".
    Its output is written to ``out_dir``/totalseg_liver.nii.gz. The liver lands on the grid of
    ``reference`` (the CT already read, e.g. when ``ct_path`` is a temporary copy of it), else of the CT
    read from ``ct_path``. Raises DelicaiteError when it is not installed or fails.
    """
    ct_path, out_dir = Path(ct_path), Path(out_dir)
    if reference is None:
        reference = read_image(ct_path)  # a non-CT input fails here, before minutes of inference
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / OUTPUT_NAME
    ts_device = _totalseg_device(device)
    _run(ct_path, out_file, fast=fast, device=ts_device)
    label = import_totalsegmentator(out_file, reference)
    if not tumour:
        return label
    tumour_file = out_dir / TUMOUR_OUTPUT_NAME
    _run(ct_path, tumour_file, fast=False, device=ts_device, task=TUMOUR_TASK)
    liver = structure_mask(label, "liver")
    return compose(liver, sitk.And(_tumour_on(reference, tumour_file), liver))


def _tumour_on(reference: sitk.Image, tumour_file: Path) -> sitk.Image:
    """The liver_vessels task's tumour (label 2) as a 0/1 mask on ``reference``'s grid; empty when it found none."""
    seg = read_volume_file(tumour_file, None, MaskError)
    if not _any(seg == TUMOUR_TASK_LABEL):
        empty = sitk.Image(reference.GetSize(), sitk.sitkUInt8)
        empty.CopyInformation(reference)
        return empty
    return import_totalsegmentator(seg, reference, liver_label=TUMOUR_TASK_LABEL)


def _run(ct_path: Path, out_file: Path, *, fast: bool, device: str, task: str | None = None) -> None:
    """One TotalSegmentator run writing the multi-label ``out_file``: the command, else the Python API."""
    executable = shutil.which(COMMAND)
    if executable is not None:
        _run_command(executable, ct_path, out_file, fast, device, task)
    else:
        api = _python_api()
        if api is None:
            raise DelicaiteError(NOT_INSTALLED)
        options = {"task": task} if task else {"roi_subset": ["liver"], "fast": fast}
        try:
            api(ct_path, out_file, ml=True, device=device, quiet=True, **options)
        except Exception as err:  # its errors are many and undocumented: report them as one line
            reason = _one_line(str(err)) or type(err).__name__
            raise DelicaiteError(f"TotalSegmentator failed on {ct_path}: {reason}") from err
    if not out_file.exists():
        raise DelicaiteError(
            f"TotalSegmentator finished but wrote no {out_file}; update it (version 2 writes the --ml file)"
        )


def build_command(executable: str, ct_path: Path, out_file: Path, fast: bool, device: str,
                  task: str | None = None) -> list[str]:
    """The TotalSegmentator command line: one multi-label file (--ml), liver only (--roi_subset liver),
    or the whole of another ``task`` (which has no fast model)."""
    command = [executable, "-i", str(ct_path), "-o", str(out_file), "--ml", "--device", device]
    if task:
        return command + ["--task", task]
    return command + ["--roi_subset", "liver"] + (["--fast"] if fast else [])


def _run_command(executable: str, ct_path: Path, out_file: Path, fast: bool, device: str, task: str | None) -> None:
    command = build_command(executable, ct_path, out_file, fast, device, task)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        log = (done.stderr or done.stdout).strip()
        last = _one_line(log.splitlines()[-1]) if log else ""
        raise DelicaiteError(
            f"TotalSegmentator failed (exit {done.returncode}): {last or 'no message'}; "
            f"run it yourself to see the log: {shlex.join(command)}"
        )


def _python_api():
    """``totalsegmentator.python_api.totalsegmentator``, or None when the package is not installed."""
    try:
        from totalsegmentator.python_api import totalsegmentator
    except ImportError:
        return None
    return totalsegmentator


def _totalseg_device(device: str) -> str:
    """Our device names (auto/cpu/cuda) as TotalSegmentator's (cpu/gpu/gpu:N/mps)."""
    if device == "auto":
        try:
            import torch

            return "gpu" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"
    if device in ("cpu", "mps", "gpu", "cuda"):
        return "gpu" if device == "cuda" else device
    for prefix in ("cuda:", "gpu:"):
        if device.startswith(prefix) and device[len(prefix):].isdigit():
            return "gpu:" + device[len(prefix):]
    raise DelicaiteError(f"unknown device {device!r} for TotalSegmentator; use auto, cpu, cuda, cuda:N or mps")


def _read_seg(path: Path, liver_label: int) -> tuple[sitk.Image, int, str]:
    """The segmentation image, the liver's value in it and a name for messages."""
    if path.is_dir():
        mask_file = path / "liver.nii.gz"
        if not mask_file.exists():
            raise MaskError(f"no liver.nii.gz in {path}; pass TotalSegmentator's output folder or its --ml file")
        return sitk.Cast(read_volume_file(mask_file, None, MaskError) != 0, sitk.sitkUInt8), 1, str(mask_file)
    return read_volume_file(path, None, MaskError), liver_label, path.name


def _any(mask: sitk.Image) -> bool:
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(mask)
    return stats.GetMaximum() > 0


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
