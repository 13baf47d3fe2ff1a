"""Square patches that lie inside the tumour or inside healthy liver, on the axial slices of a labelled CT.

They let a test or a block report ask whether image features tell the two tissues apart, and they are
unlabelled material for self-supervised pretraining. Each patch covers ``size_mm`` × ``size_mm`` of
the patient, is windowed as the study's crops (W250/L40), z-scored on its own (as each ROI is in
preprocessing.py, so intensity alone does not give the answer away) and resized to ``out_size``.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import uniform_filter

from ...errors import MaskError
from ...io.checks import same_grid
from ...preprocessing import resize_crops, window_bounds
from ...slices import TUMOUR_LABEL

LIVER_LABEL = 1  # healthy liver: the label map marks tumour 2 over liver 1
TISSUES = {"tumour": TUMOUR_LABEL, "liver": LIVER_LABEL}


def patch_centres(label: np.ndarray, value: int, side: int, min_inside: float) -> np.ndarray:
    """(z, row, column) of every pixel where a side × side square around it is ≥ min_inside label ``value``."""
    inside = (label == value).astype(np.float32)
    share = uniform_filter(inside, size=(1, side, side), mode="constant")  # per-slice box mean
    half = side // 2
    share[:, :half], share[:, -half:], share[:, :, :half], share[:, :, -half:] = 0, 0, 0, 0  # whole square on the image
    return np.argwhere(share >= min_inside - 1e-6)


def tissue_patches(image: sitk.Image, label: sitk.Image, tissue: str, n: int, *, size_mm: float = 24.0,
                   out_size: int = 64, min_inside: float = 0.95, seed: int = 0) -> np.ndarray:
    """``n`` patches (n, out_size, out_size) float32 of ``tissue`` ("tumour" or "liver"), centres drawn at
    random without replacement among all squares at least ``min_inside`` covered by that tissue.

    Raises MaskError when the label is off the image grid or holds too few such squares."""
    if tissue not in TISSUES:
        raise ValueError(f"tissue must be one of {', '.join(TISSUES)}, got {tissue!r}")
    if not same_grid(image, label):
        raise MaskError("label map is not on the image grid; load image and mask with load_case so the mask is resampled")
    spacing = float(image.GetSpacing()[0])
    side = max(3, int(round(size_mm / spacing)) | 1)  # odd, so the square is centred on a pixel
    labels = sitk.GetArrayViewFromImage(label)
    centres = patch_centres(labels, TISSUES[tissue], side, min_inside)
    if len(centres) < n:
        raise MaskError(f"only {len(centres)} {size_mm:g} mm squares lie inside the {tissue} (label {TISSUES[tissue]}); "
                        f"asked for {n}: use smaller patches or fewer of them")
    picked = centres[np.random.default_rng(seed).choice(len(centres), size=n, replace=False)]
    pixels = sitk.GetArrayViewFromImage(image)
    low, high = window_bounds()
    half = side // 2
    crops = np.stack([np.clip(pixels[z, r - half:r + half + 1, c - half:c + half + 1], low, high) for z, r, c in picked])
    crops = crops.astype(np.float32)
    crops -= crops.mean(axis=(1, 2), keepdims=True)
    crops /= np.maximum(crops.std(axis=(1, 2), keepdims=True), 1e-6)  # a flat patch stays at 0
    return resize_crops(crops, out_size)


def labelled_tissue_patches(image: sitk.Image, label: sitk.Image, n_per_tissue: int, **options) -> tuple[np.ndarray, np.ndarray]:
    """(patches, y): ``n_per_tissue`` tumour patches (y = 1) then as many healthy-liver ones (y = 0)."""
    tumour = tissue_patches(image, label, "tumour", n_per_tissue, **options)
    liver = tissue_patches(image, label, "liver", n_per_tissue, **options)
    return np.concatenate([tumour, liver]), np.repeat([1, 0], n_per_tissue)
