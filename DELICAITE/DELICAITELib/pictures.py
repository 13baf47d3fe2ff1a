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


def write_segmentation_preview(path: Path, image: sitk.Image, label: sitk.Image, n_slices: int = 3) -> Path:
    """Three axial slices spread through the liver (25/50/75 % of its extent) with the outlines."""
    from .io import label_volumes_ml

    liver_slices = np.flatnonzero((sitk.GetArrayViewFromImage(label) >= 1).any(axis=(1, 2)))
    if liver_slices.size == 0:
        indices = [image.GetSize()[2] // 2]
    else:
        quantiles = np.linspace(0, 1, n_slices + 2)[1:-1]
        indices = sorted({int(v) for v in np.quantile(liver_slices, quantiles, method="nearest")})
    volumes = label_volumes_ml(label)
    fig, axes = plt.subplots(1, len(indices), figsize=(3.4 * len(indices), 3.6), constrained_layout=True, squeeze=False)
    draw_slices(axes, {"CT": image}, label, indices, [""] * len(indices))
    fig.suptitle(f"liver {volumes['liver_ml']:.0f} mL · tumour {volumes['tumour_ml']:.0f} mL", fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
