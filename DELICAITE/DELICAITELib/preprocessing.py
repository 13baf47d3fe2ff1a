"""The study's ROI pipeline for one axial slice of one phase (PAPER.md, "Imaging pipeline").

Steps, in the paper's order: crop to the tumour's minimal bounding rectangle on the slice, window
W250/L40 (clip to [−85, 165] HU), resample in plane to 0.72 × 0.72 mm, z-score, resize to 224 × 224.
Training augmentation: random horizontal and vertical flips, rotation in [−30°, 30°].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
import torch
from monai.transforms import Compose, EnsureType, NormalizeIntensity, RandFlip, RandRotate, Resize

from .errors import DelicaiteError, MaskError
from .io.case import Case
from .io.checks import same_grid
from .slices import TUMOUR_LABEL, SliceArea

# Paper: "Window width 250, level 40. In-plane resampling to 0.72 × 0.72 mm (the training set's
# median). Z-score intensity normalization. Resize to 224 × 224."
WINDOW_WIDTH_HU = 250.0
WINDOW_LEVEL_HU = 40.0
TARGET_SPACING_MM = 0.72
INPUT_SIZE = 224
# Paper: "random horizontal and vertical flips, rotation in [−30°, 30°]".
FLIP_PROBABILITY = 0.5
ROTATION_RANGE_DEG = 30.0
PHASES = ("AP", "VP")


def window_bounds(width: float = WINDOW_WIDTH_HU, level: float = WINDOW_LEVEL_HU) -> tuple[float, float]:
    """Lowest and highest HU kept by a window: W250/L40 → (−85, 165)."""
    return level - width / 2.0, level + width / 2.0


def tumour_roi(
    image: sitk.Image, label: sitk.Image, z_index: int, *, tumour_label: int = TUMOUR_LABEL,
    mask_outside: bool = False, outside_value: float = 0.0,
) -> sitk.Image:
    """Axial slice ``z_index`` cropped to the tumour's minimal bounding rectangle (a 2-D float32 image).

    With ``mask_outside`` the pixels of the rectangle that are not tumour are set to ``outside_value``.
    Raises MaskError when the label is not on the image grid or the slice holds no tumour.
    """
    if not same_grid(image, label):
        raise MaskError(
            "label map is not on the image grid; load image and mask with load_case so the mask is resampled"
        )
    depth = image.GetSize()[2]
    if not 0 <= int(z_index) < depth:
        raise DelicaiteError(
            f"slice index {z_index} is outside the image (0..{depth - 1}); pick slices with largest_tumour_slices"
        )
    z = int(z_index)
    image_2d = sitk.Cast(image[:, :, z], sitk.sitkFloat32)
    tumour_2d = sitk.Cast(label[:, :, z] == tumour_label, sitk.sitkUInt8)
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(tumour_2d)
    if not shape.HasLabel(1):
        raise MaskError(f"slice {z} has no tumour (label {tumour_label}); pick slices with largest_tumour_slices")
    x, y, width, height = shape.GetBoundingBox(1)
    roi = sitk.RegionOfInterest(image_2d, [width, height], [x, y])
    if mask_outside:
        roi = sitk.Mask(roi, sitk.RegionOfInterest(tumour_2d, [width, height], [x, y]), outsideValue=outside_value)
    return roi


def apply_window(image: sitk.Image, width: float = WINDOW_WIDTH_HU, level: float = WINDOW_LEVEL_HU) -> sitk.Image:
    """Clip intensities to the window (HU kept, not rescaled): W250/L40 → [−85, 165]."""
    low, high = window_bounds(width, level)
    return sitk.Clamp(image, sitk.sitkFloat32, low, high)


def resample_in_plane(image: sitk.Image, spacing_mm: float = TARGET_SPACING_MM) -> sitk.Image:
    """Linear resampling of a 2-D image to ``spacing_mm`` pixels covering the same physical rectangle."""
    old_spacing = np.array(image.GetSpacing())
    old_size = np.array(image.GetSize())
    new_size = np.maximum(1, np.round(old_size * old_spacing / spacing_mm)).astype(int)
    new_spacing = np.full(2, spacing_mm)
    direction = np.array(image.GetDirection()).reshape(2, 2)
    # Keep the outer pixel edge in place: shift the first centre by half the spacing change.
    origin = np.array(image.GetOrigin()) + direction @ ((new_spacing - old_spacing) / 2.0)
    return sitk.Resample(
        image, new_size.tolist(), sitk.Transform(), sitk.sitkLinear, origin.tolist(), new_spacing.tolist(),
        image.GetDirection(), 0.0, sitk.sitkFloat32,
    )


def preprocess_slice(
    image: sitk.Image, label: sitk.Image, z_index: int, *,
    window_width: float = WINDOW_WIDTH_HU, window_level: float = WINDOW_LEVEL_HU,
    spacing_mm: float = TARGET_SPACING_MM, size: int = INPUT_SIZE, mask_outside: bool = False,
) -> np.ndarray:
    """One phase, one axial slice → float32 array (size, size): crop, window, resample, z-score, resize.

    Rows run anterior→posterior and columns patient right→left (radiological display).
    With ``mask_outside`` the non-tumour pixels of the rectangle are set to the window minimum.
    """
    low, _ = window_bounds(window_width, window_level)
    roi = tumour_roi(image, label, z_index, mask_outside=mask_outside, outside_value=low)
    windowed = apply_window(roi, window_width, window_level)
    resampled = resample_in_plane(windowed, spacing_mm)
    pixels = sitk.GetArrayFromImage(resampled)[np.newaxis]  # (1, H, W): MONAI is channel-first
    # NormalizeIntensity leaves a constant ROI at 0 instead of dividing by a zero std.
    normalised = NormalizeIntensity()(pixels)
    resized = Resize(spatial_size=(size, size), mode="bilinear", anti_aliasing=True)(normalised)
    return np.asarray(resized, dtype=np.float32)[0]


def preprocess_case(case: Case, slice_indices: Sequence[int | SliceArea], **options) -> dict[str, np.ndarray]:
    """Both phases on the chosen slices: ``{"AP": (n, 224, 224), "VP": (n, 224, 224)}`` float32.

    ``slice_indices`` are z indices or the SliceArea items of largest_tumour_slices; ``options`` go to
    preprocess_slice. The case's label (on the AP grid, which VP shares) gives the ROI for both phases.
    """
    if case.label is None:
        raise MaskError("the case has no label map: load it with a mask (liver 1, tumour 2) to preprocess")
    indices = [item.index if isinstance(item, SliceArea) else int(item) for item in slice_indices]
    if not indices:
        raise MaskError("no slices given: pick them with largest_tumour_slices")
    phases = {"AP": case.ap, "VP": case.vp}
    return {
        name: np.stack([preprocess_slice(phases[name], case.label, z, **options) for z in indices]) for name in PHASES
    }


def training_augmentation(seed: int | None = None) -> Compose:
    """MONAI transform for (C, H, W) arrays or tensors: random flips and a uniform rotation in ±30°.

    All channels get the same flip and rotation, so stack AP and VP as channels to keep them aligned.
    Returns float32 torch tensors of the input shape; ``seed`` makes the random sequence repeatable.
    """
    augment = Compose([
        RandFlip(prob=FLIP_PROBABILITY, spatial_axis=1),  # horizontal: the W axis
        RandFlip(prob=FLIP_PROBABILITY, spatial_axis=0),  # vertical: the H axis
        # Always rotate, by an angle uniform in [-30°, 30°]; corners become 0, the z-scored mean.
        RandRotate(range_x=np.deg2rad(ROTATION_RANGE_DEG), prob=1.0, keep_size=True, padding_mode="zeros"),
        EnsureType(data_type="tensor", dtype=torch.float32, track_meta=False),
    ])
    if seed is not None:
        augment.set_random_state(seed=seed)
    return augment


def resize_crops(crops, size: tuple[int, int] | int | None) -> np.ndarray:
    """(n, H, W) crops bilinearly resized (with antialiasing) to ``size``; as given when None or already so.
    Models trained or pretrained on smaller crops (deep features) see the 224 px crops at their size."""
    pixels = np.asarray(crops, dtype=np.float32)
    if size is None:
        return pixels
    size = (size, size) if isinstance(size, int) else tuple(int(v) for v in size)
    if pixels.ndim != 3 or tuple(pixels.shape[1:]) == size:
        return pixels
    batch = torch.from_numpy(np.ascontiguousarray(pixels))[:, None]
    out = torch.nn.functional.interpolate(batch, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out[:, 0].numpy()
