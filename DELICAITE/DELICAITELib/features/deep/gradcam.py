"""Grad-CAM maps of a phase CNN (PAPER.md, "Features": "Grad-CAM maps for interpretation").

The map weighs the last residual stage's (layer4) activations by the gradient of the PD logit, keeps
the positive part and is upsampled to the crop: bright where the image pushes the CNN towards PD.
``save_gradcam_png`` draws it over the crop for a person to read.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from monai.visualize import GradCAM

from ...errors import DelicaiteError
from .cnn import PhaseCNN, check_crops

TARGET_LAYER = "layer4"
FIGURE_SIZE_INCHES = (5.0, 4.2)
FIGURE_DPI = 100  # a 500 × 420 pixel PNG
# Opacity grows with the map, so the CT stays readable where the map is low.
OVERLAY_ALPHA_LOW, OVERLAY_ALPHA_HIGH = 0.1, 0.6


def _unit_range(cam: torch.Tensor) -> torch.Tensor:
    # MONAI's default normaliser maps max → 0 (it flips the map); here the strongest evidence is 1.
    low, high = cam.amin(), cam.amax()
    return (cam - low) / (high - low) if high > low else torch.zeros_like(cam)


def grad_cam(cnn: PhaseCNN, crop) -> np.ndarray:
    """Grad-CAM of the PD logit for one crop (H, W): a float32 (H, W) map in [0, 1] (all 0 when no
    region raises the logit)."""
    pixels = np.asarray(crop, dtype=np.float32)
    if pixels.ndim != 2:
        raise DelicaiteError(f"grad_cam takes one crop (height, width), got shape {pixels.shape}")
    pixels = check_crops(pixels[None], cnn.input_size)
    # MONAI's hooks stay on the module they wrap; a copy keeps the caller's network hook-free.
    network = copy.deepcopy(cnn.network).eval()
    cam = GradCAM(nn_module=network, target_layers=TARGET_LAYER, postprocessing=_unit_range)
    result = cam(torch.from_numpy(pixels[:, None]), class_idx=0)
    return result[0, 0].detach().numpy().astype(np.float32)


def save_gradcam_png(crop, cam, path, title: str | None = None, *,
                     colour_bar_label: str = "Grad-CAM (towards PD)") -> Path:
    """PNG of the crop in grey with the map as a semi-transparent colour overlay and a colour bar;
    returns ``path``."""
    pixels, heat = np.asarray(crop, dtype=np.float64), np.asarray(cam, dtype=np.float64)
    if pixels.ndim != 2 or heat.shape != pixels.shape:
        raise DelicaiteError(f"crop {pixels.shape} and map {heat.shape} must be 2-D and of the same shape; "
                             "pass one crop and its grad_cam")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=FIGURE_SIZE_INCHES, dpi=FIGURE_DPI)  # no pyplot: no global state, no GUI backend
    axes = figure.add_subplot()
    axes.imshow(pixels, cmap="gray", interpolation="bilinear")
    alpha = OVERLAY_ALPHA_LOW + (OVERLAY_ALPHA_HIGH - OVERLAY_ALPHA_LOW) * np.clip(heat, 0.0, 1.0)
    overlay = axes.imshow(heat, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0, interpolation="bilinear")
    axes.set_axis_off()
    if title:
        axes.set_title(title, fontsize=10)
    figure.colorbar(overlay, ax=axes, fraction=0.046, pad=0.04, label=colour_bar_label)
    figure.savefig(path, dpi=FIGURE_DPI, format="png")
    return path
