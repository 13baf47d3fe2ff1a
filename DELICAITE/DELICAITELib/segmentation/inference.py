"""Auto-segmentation of liver (1) and tumour (2) on the CT's own grid with the trained network.

Pipeline: check the CT → resample to the working grid (:mod:`.preprocess`) → MONAI sliding-window
inference (Gaussian-weighted overlapping patches; mixed precision on CUDA) → softmax → liver and
tumour probabilities resampled *linearly* back onto the input grid → argmax there → post-processing.
Interpolating probabilities rather than labels gives smooth sub-voxel boundaries on a fine input
grid (e.g. 0.7 mm) from a 3 mm working grid.
"""

from __future__ import annotations

import warnings

import numpy as np
import SimpleITK as sitk
import torch
from monai.inferers import sliding_window_inference
from torch import nn

from ..io import check_ct
from ..io.labels import label_volumes_ml
from ..progress import ProgressCallback, Reporter, reporter
from .backends import TUMOUR_POLICIES
from .device import resolve_device
from .network import SegmentationConfig
from .preprocess import to_working_arrays
from .weights import TRUSTED_TUMOUR_DICE, held_out_tumour_dice, load_segmentation_weights

__all__ = ["segment", "load_segmentation_weights", "predict_probabilities", "MIN_LIVER_ML"]

# A whole or partial abdominal CT shows hundreds of mL of liver; less means the liver is not in the
# field of view (head, chest, legs) or the network failed, and the caller should know.
MIN_LIVER_ML = 200.0
# The liver is never wrapped in bone; a "liver" whose 9 mm surroundings are mostly bone is brain in
# a skull (or similar). Real livers measured 0–3 % bone around them (ribs), a synthetic head 25 %.
BONE_HU = 300.0
SHELL_MM = 9.0
MAX_BONE_SHELL_FRACTION = 0.15
# a volume smaller than a patch (partial scan, tight crop) is padded by repeating its border
PAD_MODE = "replicate"
OVERLAP = 0.25  # sliding-window overlap: 0.25 halves the work of 0.5 for a Dice change < 0.005 here


def predict_probabilities(network: nn.Module, values: np.ndarray, config: SegmentationConfig,
                          device: torch.device) -> np.ndarray:
    """Softmax probabilities (classes, z, y, x) float32 of scaled working-grid ``values`` (z, y, x)."""
    network = network.to(device).eval()
    inputs = torch.from_numpy(np.ascontiguousarray(values))[None, None].to(device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        logits = sliding_window_inference(inputs, config.patch_zyx, sw_batch_size=2 if device.type == "cpu" else 8,
                                          predictor=network, overlap=OVERLAP, mode="gaussian",
                                          padding_mode=PAD_MODE)
        probabilities = torch.softmax(logits.float(), dim=1)[0]
    return probabilities.cpu().numpy()


def segment(image: sitk.Image, weights=None, device: str = "auto",
            progress: ProgressCallback | Reporter | None = None, postprocess: bool = True,
            tumour: str = "trusted") -> sitk.Image:
    """Label map (UInt8: 0 background, 1 liver, 2 tumour) of CT ``image`` on ``image``'s grid.

    ``weights``: a model directory (weights.npz + model.json) or None for the shipped model.
    ``device``: "auto" (CUDA when available), "cpu" or "cuda" (DelicaiteError when absent).
    ``progress``: gets a ProgressEvent before each step, with the share of the work done. ``postprocess``: keep the largest
    liver component, fill holes, cut out contrast-filled lumens, keep tumour inside the liver. Raises ImageError for a non-CT image;
    warns "no liver found in the field of view" when less than :data:`MIN_LIVER_ML` of liver is found.
    ``tumour``: "trusted" keeps the automatic tumour only when the weights' held-out tumour Dice reaches
    :data:`~.weights.TRUSTED_TUMOUR_DICE` (otherwise it becomes liver, with a warning that says to draw or
    seed it); "always" keeps it (evaluation scripts).
    """
    if tumour not in TUMOUR_POLICIES:
        raise ValueError(f"tumour must be one of {TUMOUR_POLICIES}, not {tumour!r}")
    report = reporter(progress)
    check_ct(image, name="CT to segment")
    torch_device = resolve_device(device)
    network, config, _ = load_segmentation_weights(weights)
    report("resampling the CT to the working grid", 0.0)
    values, _, grid = to_working_arrays(image, None, config)
    report(f"running the segmentation network on {torch_device.type}", 0.1)
    probabilities = predict_probabilities(network, values, config, torch_device)
    drop_air(probabilities, values)
    bone_fraction = bone_around_liver(probabilities, values, config)
    del values
    if bone_fraction > MAX_BONE_SHELL_FRACTION:
        warnings.warn(
            f"no liver found in the field of view: the liver-like region the network found is {100 * bone_fraction:.0f}% "
            "surrounded by bone (a head?), so it was discarded; give an abdominal CT or draw the liver by hand",
            stacklevel=2,
        )
        return _empty_label(image)
    report("resampling the prediction onto the CT grid", 0.7)
    label = _labels_on_grid(probabilities, grid, image)
    if postprocess:
        from .postprocess import postprocess as clean

        report("post-processing the label map", 0.85)
        label = clean(label, image)
    if tumour == "trusted":
        label = withhold_untrusted_tumour(label, weights)
    liver_ml = label_volumes_ml(label)["liver_ml"]
    report(f"segmented: liver {liver_ml:.0f} mL", 1.0)
    if liver_ml < MIN_LIVER_ML:
        warnings.warn(
            f"no liver found in the field of view ({liver_ml:.0f} mL of liver < {MIN_LIVER_ML:.0f} mL): "
            "check that the CT covers the upper abdomen, or draw the liver by hand",
            stacklevel=2,
        )
    return label


def drop_air(probabilities: np.ndarray, values: np.ndarray) -> None:
    """Background wherever the working grid is at the bottom of the HU window (at or below -200 HU: air,
    lung, gas), in place. A patch of constant input (air outside the field of view, padding) reaches the
    network as all zeros after instance normalisation, and the network's biases alone can call it liver:
    a 900-slice scan padded with air came back with 3.4 L of "liver" in the air. No liver is that dark."""
    air = values <= 0.0
    probabilities[1:, air] = 0.0
    probabilities[0, air] = 1.0


def withhold_untrusted_tumour(label: sitk.Image, weights=None) -> sitk.Image:
    """``label`` with its tumour turned into liver, and a warning, unless the weights earned trust in it."""
    dice = held_out_tumour_dice(weights)
    if dice is not None and dice >= TRUSTED_TUMOUR_DICE:
        return label
    evidence = "was never measured on held-out volumes" if dice is None else f"is {dice:.2f} on held-out volumes"
    warnings.warn(
        f"automatic tumour withheld: these weights' tumour Dice {evidence} (trusted from {TRUSTED_TUMOUR_DICE}); "
        "draw the tumour, or seed it with one click per lesion (--tumour-seed R,A,S)",
        stacklevel=3,
    )
    return sitk.Cast(sitk.Clamp(label, sitk.sitkUInt8, 0, 1), sitk.sitkUInt8)


def bone_around_liver(probabilities: np.ndarray, values: np.ndarray, config: SegmentationConfig) -> float:
    """Fraction of bone (>= BONE_HU) in a SHELL_MM shell around the predicted liver, on the working grid."""
    liver = sitk.GetImageFromArray(((probabilities[1] + probabilities[2]) > 0.5).astype(np.uint8))
    liver.SetSpacing(config.spacing_mm)
    radius = [max(1, round(SHELL_MM / s)) for s in config.spacing_mm]
    shell = sitk.GetArrayFromImage(sitk.BinaryDilate(liver, radius) - liver).astype(bool)
    if not shell.any():
        return 0.0
    low, high = config.hu_window
    # values are scaled HU; above the window's top every voxel reads 1.0, so compare there at most
    bone_level = (min(BONE_HU, high) - low) / (high - low) - 1e-6
    return float(np.mean(values[shell] >= bone_level))


def _empty_label(reference: sitk.Image) -> sitk.Image:
    label = sitk.Image(reference.GetSize(), sitk.sitkUInt8)
    label.CopyInformation(reference)
    return label


def probabilities_to_labels(liver: np.ndarray, tumour: np.ndarray) -> np.ndarray:
    """UInt8 labels from liver and tumour probabilities, hierarchically: first the whole liver
    (P(liver) + P(tumour) > P(background), i.e. > 0.5), then tumour where P(tumour) > P(liver).

    A plain argmax would call a voxel background at 0.4 / 0.3 / 0.3 although it is liver-or-tumour
    with probability 0.6; the contract's liver is label >= 1, so the liver is decided first.
    """
    labels = ((liver + tumour) > 0.5).view(np.uint8)  # bool and uint8 share their bytes: no int64 temporaries
    labels += labels & (tumour > liver)
    return labels


# Slices resampled at a time onto the CT grid: a 512² slab of 32 slices holds 34 MB of probabilities,
# where the whole of a 512² × 900 CT at once held 1.9 GB (and its int64 label temporaries 3.8 GB more).
SLAB_SLICES = 32


def _labels_on_grid(probabilities: np.ndarray, grid: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Label map on ``reference``'s grid from working-grid probabilities, interpolated linearly, slab by slab.

    Only liver and tumour are resampled: linear interpolation keeps the classes summing to one, so
    background is 1 − liver − tumour.
    """
    foreground = sitk.GetImageFromArray(np.moveaxis(probabilities[1:], 0, -1), isVector=True)
    foreground.CopyInformation(grid)
    size = reference.GetSize()
    labels = np.empty(size[::-1], np.uint8)
    for start in range(0, size[2], SLAB_SLICES):
        depth = min(SLAB_SLICES, size[2] - start)
        slab = sitk.Image([size[0], size[1], depth], sitk.sitkUInt8)
        slab.SetSpacing(reference.GetSpacing())
        slab.SetDirection(reference.GetDirection())
        slab.SetOrigin(reference.TransformIndexToPhysicalPoint((0, 0, start)))
        on_slab = sitk.Resample(foreground, slab, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkVectorFloat32)
        fg = sitk.GetArrayViewFromImage(on_slab)  # (z, y, x, 2): liver, tumour
        labels[start:start + depth] = probabilities_to_labels(fg[..., 0], fg[..., 1])
        del fg, on_slab
    label = sitk.GetImageFromArray(labels)
    label.CopyInformation(reference)
    return label
