"""The liver/tumour segmentation network and the settings that travel with its weights.

One frozen :class:`SegmentationConfig` describes everything inference must reproduce (working grid,
intensity window, patch, architecture); it is stored in model.json beside the weights, so a model file
is self-describing and a config change can never silently mismatch old weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from monai.networks.layers import Norm
from monai.networks.nets import UNet
from torch import nn

from ..errors import ModelFileError

FORMAT_NAME = "delicaite-liver-segmentation"
FORMAT_VERSION = 1
CLASS_NAMES = ("background", "liver", "tumour")


@dataclass(frozen=True)
class SegmentationConfig:
    """Working resolution, intensity scaling, patch and architecture of the segmentation network.

    Defaults were measured on 2 CPU cores: a 3 mm isotropic grid keeps a whole abdomen within a few
    96×96×64 patches (29×29×19 cm of context, enough to tell liver from spleen by position), and a
    4-level MONAI UNet with 16–256 channels does a training step (batch 2) in about 0.35 s.
    """

    spacing_mm: tuple[float, float, float] = (3.0, 3.0, 3.0)  # working grid, x y z (LPS)
    patch_size: tuple[int, int, int] = (96, 96, 64)  # x y z voxels, training crops and inference windows
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    num_res_units: int = 1
    hu_window: tuple[float, float] = (-200.0, 300.0)  # HU clipped to this range, then scaled to 0..1
    num_classes: int = 3  # background, liver, tumour
    format_name: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        if len(self.spacing_mm) != 3 or min(self.spacing_mm) <= 0:
            raise ValueError(f"spacing_mm must be three positive numbers, got {self.spacing_mm}")
        if len(self.patch_size) != 3:
            raise ValueError(f"patch_size must be three integers, got {self.patch_size}")
        factor = 1
        for s in self.strides:
            factor *= s
        if any(p % factor for p in self.patch_size):  # UNet skip connections need exact halving
            raise ValueError(f"patch_size {self.patch_size} must be divisible by {factor} (the product of the strides)")
        if len(self.channels) != len(self.strides) + 1:
            raise ValueError("channels must have one more entry than strides")
        if self.hu_window[0] >= self.hu_window[1]:
            raise ValueError(f"hu_window must be (low, high) with low < high, got {self.hu_window}")

    @property
    def patch_zyx(self) -> tuple[int, int, int]:
        """The patch in numpy/torch axis order (z, y, x), as SimpleITK arrays are laid out."""
        return tuple(reversed(self.patch_size))

    def to_dict(self) -> dict:
        """Plain JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "SegmentationConfig":
        """Inverse of :meth:`to_dict`; unknown keys are refused (a newer file this library cannot read)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ModelFileError(
                f"segmentation config has unknown settings {sorted(unknown)}; update DELICAITE to read this model"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def build_network(config: SegmentationConfig | None = None) -> nn.Module:
    """A MONAI 3-D UNet: one input channel (scaled CT), ``num_classes`` output logits."""
    config = config or SegmentationConfig()
    return UNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=config.num_classes,
        channels=config.channels,
        strides=config.strides,
        num_res_units=config.num_res_units,
        norm=Norm.INSTANCE,  # batch statistics of 2 patches would be too noisy for BatchNorm
    )
