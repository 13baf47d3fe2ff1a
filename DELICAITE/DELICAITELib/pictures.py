"""Axial CT slices with the liver and tumour outlined, as a person reads them (matplotlib, headless).

Drawn by the case report (the three largest tumour slices of each phase) and by `delicaite segment
--preview` (three slices spread through the liver).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # pictures are drawn headless, from the CLI, tests and Slicer alike
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

WINDOW = (-85.0, 165.0)  # W250/L40, as the study reads the slices


def liver_box(label: np.ndarray, margin: int = 12) -> tuple[slice, slice]:
    """In-plane box around the liver (label >= 1) over the whole volume, so every panel shares it."""
    rows = np.flatnonzero(label.any(axis=(0, 2)))
    cols = np.flatnonzero(label.any(axis=(0, 1)))
    if rows.size == 0:
        return slice(None), slice(None)
    return (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
            slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))


def draw_slices(axes_rows, images: Mapping[str, sitk.Image], label: sitk.Image, indices: Sequence[int],
                captions: Sequence[str]) -> None:
    """One row per phase, one panel per slice: CT at W250/L40, liver outline blue, tumour outline yellow."""
    label_array = sitk.GetArrayViewFromImage(label)
    box = liver_box(label_array)
    sx, sy = label.GetSpacing()[:2]
    for axes, (phase, image) in zip(axes_rows, images.items()):
        array = sitk.GetArrayViewFromImage(image)
        for ax, z, caption in zip(axes, indices, captions):
            ax.imshow(array[z][box], cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=sy / sx)
            for mask, colour, width in ((label_array[z][box] >= 1, "#39c0ff", 0.8),
                                        (label_array[z][box] == 2, "#ffd400", 1.2)):
                if mask.any():
                    ax.contour(mask, levels=[0.5], colors=colour, linewidths=width)
            ax.set_title(f"{phase} · slice {z}{caption}", fontsize=9)
            ax.set_axis_off()


def write_segmentation_preview(path: Path, image: sitk.Image, label: sitk.Image, n_slices: int = 3,
                               title: str = "") -> Path:
    """Three whole axial slices spread through the liver (20/50/80 % of its extent) and one coronal view
    through its centre, with the outlines: the whole body is shown, so a mask that takes in the stomach,
    heart or pelvis is seen at a glance."""
    from .io import label_volumes_ml

    label_array = sitk.GetArrayViewFromImage(label)
    liver_slices = np.flatnonzero((label_array >= 1).any(axis=(1, 2)))
    if liver_slices.size == 0:
        indices = [image.GetSize()[2] // 2]
    else:
        quantiles = np.linspace(0.2, 0.8, n_slices)
        indices = sorted({int(v) for v in np.quantile(liver_slices, quantiles, method="nearest")})
    volumes = label_volumes_ml(label)
    fig, axes = plt.subplots(1, len(indices) + 1, figsize=(3.4 * (len(indices) + 1), 3.8), constrained_layout=True,
                             squeeze=False)
    array = sitk.GetArrayViewFromImage(image)
    sx, sy, sz = label.GetSpacing()
    # radiological convention whatever the header: patient's right on the image's left, anterior up
    direction = np.asarray(label.GetDirection()).reshape(3, 3)
    flip_x, flip_y = direction[0, 0] < 0, direction[1, 1] < 0
    for ax, z in zip(axes[0], indices):
        _draw(ax, *_oriented((array[z], label_array[z]), flip_x, flip_y), sy / sx, f"axial · slice {z}")
    row = _coronal_row(label_array)
    _draw(axes[0][-1], *_oriented((array[:, row, :], label_array[:, row, :]), flip_x, direction[2, 2] >= 0),
          sz / sx, f"coronal · row {row}")
    heading = f"liver {volumes['liver_ml']:.0f} mL · tumour {volumes['tumour_ml']:.0f} mL"
    fig.suptitle(f"{title} · {heading}" if title else heading, fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _coronal_row(label_array: np.ndarray) -> int:
    """The row (y index) through the middle of the liver, or the middle of the image without one."""
    rows = np.flatnonzero((label_array >= 1).any(axis=(0, 2)))
    return int(np.median(rows)) if rows.size else label_array.shape[1] // 2


def _oriented(planes, flip_columns: bool, flip_rows: bool):
    """The 2-D ``planes`` flipped so that they read in radiological convention."""
    return [p[::-1 if flip_rows else 1, ::-1 if flip_columns else 1] for p in planes]


def _draw(ax, ct: np.ndarray, label: np.ndarray, aspect: float, caption: str) -> None:
    ax.imshow(ct, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=aspect)
    for mask, colour, width in ((label >= 1, "#39c0ff", 0.8), (label == 2, "#ffd400", 1.2)):
        if mask.any():
            ax.contour(mask, levels=[0.5], colors=colour, linewidths=width)
    ax.set_title(caption, fontsize=9)
    ax.set_axis_off()
