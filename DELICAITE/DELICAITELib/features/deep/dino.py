"""The pieces of DINO self-distillation (Caron et al. 2021, "Emerging properties in self-supervised vision
transformers"), for one-channel z-scored CT crops: multi-crop views, the projection head, the loss.

- Views: two global crops (large area) and a few local crops (small area) of each image, each with a
  random resized crop, a flip, a rotation within the study's ±30° and an intensity jitter, blur and noise
  in place of DINO's colour jitter (CT has one channel; solarisation has no meaning for HU).
- Head: a 3-layer MLP, an l2-normalised bottleneck and a weight-normalised last layer whose norm is held
  at 1 (DINO's ``norm_last_layer``), giving K prototype scores.
- Loss: the teacher's scores are centred (a running mean over batches) and sharpened (low temperature);
  the student's softmax at a higher temperature is pulled towards them by cross-entropy, over every
  (teacher global view, student view) pair of different views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...preprocessing import FLIP_PROBABILITY, ROTATION_RANGE_DEG


@dataclass(frozen=True)
class ViewSettings:
    """Multi-crop: sizes in pixels, scales as the fraction of the image area a crop covers."""

    global_size: int = 64
    local_size: int = 32
    n_local: int = 4
    global_scale: tuple[float, float] = (0.4, 1.0)  # DINO's defaults
    local_scale: tuple[float, float] = (0.05, 0.4)
    max_rotation_deg: float = ROTATION_RANGE_DEG
    contrast: float = 0.2  # intensity × U(1 ± contrast) + U(± brightness), on z-scored values
    brightness: float = 0.2
    max_noise_sd: float = 0.1
    max_blur_sigma_px: float = 1.0


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def crop_transforms(n: int, scale: tuple[float, float], max_rotation_deg: float,
                    generator: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) affine maps (output → input, coordinates in [-1, 1]): a random area fraction in
    ``scale`` and aspect ratio in [3/4, 4/3] at a random place, rotated and flipped."""
    area = _uniform(n, *scale, generator)
    log_ratio = _uniform(n, math.log(3 / 4), math.log(4 / 3), generator)
    width = torch.sqrt(area * log_ratio.exp()).clamp(max=1.0)  # half-extents in normalised units
    height = torch.sqrt(area / log_ratio.exp()).clamp(max=1.0)
    centre_x = _uniform(n, -1.0, 1.0, generator) * (1.0 - width)
    centre_y = _uniform(n, -1.0, 1.0, generator) * (1.0 - height)
    angle = torch.deg2rad(_uniform(n, -max_rotation_deg, max_rotation_deg, generator))
    flip_x = torch.where(torch.rand(n, generator=generator) < FLIP_PROBABILITY, -1.0, 1.0)
    flip_y = torch.where(torch.rand(n, generator=generator) < FLIP_PROBABILITY, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx, sy = width * flip_x, height * flip_y
    return torch.stack([torch.stack([cos * sx, -sin * sy, centre_x], 1),
                        torch.stack([sin * sx, cos * sy, centre_y], 1)], 1)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image (n, 1, H, W) with its own sigma (n,) in pixels (a 5 × 5 kernel; sigma 0 keeps it)."""
    offsets = torch.arange(-2, 3, dtype=images.dtype)
    weights = torch.exp(-offsets[None] ** 2 / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))
    weights = weights / weights.sum(1, keepdim=True)
    kernels = (weights[:, :, None] * weights[:, None, :])[:, None]  # (n, 1, 5, 5)
    n, _, height, width = images.shape
    padded = F.pad(images.reshape(1, n, height, width), (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, kernels, groups=n).reshape(n, 1, height, width)


def random_views(images: torch.Tensor, size: int, scale: tuple[float, float], blur_probability: float,
                 settings: ViewSettings, generator: torch.Generator) -> torch.Tensor:
    """One augmented view (n, 1, size, size) of each image (n, 1, H, W)."""
    n = images.shape[0]
    transforms = crop_transforms(n, scale, settings.max_rotation_deg, generator)
    grid = F.affine_grid(transforms, [n, 1, size, size], align_corners=False)
    # Zeros outside: the z-scored mean, as the study's rotation augmentation fills its corners.
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    blurred = torch.rand(n, generator=generator) < blur_probability
    sigma = torch.where(blurred, _uniform(n, 0.1, settings.max_blur_sigma_px, generator), torch.zeros(n))
    views = gaussian_blur(views, sigma)
    contrast = _uniform(n, 1 - settings.contrast, 1 + settings.contrast, generator)
    brightness = _uniform(n, -settings.brightness, settings.brightness, generator)
    noise_sd = _uniform(n, 0.0, settings.max_noise_sd, generator)
    noise = torch.randn(views.shape, generator=generator) * noise_sd[:, None, None, None]
    return views * contrast[:, None, None, None] + brightness[:, None, None, None] + noise


def multi_crop(images: torch.Tensor, settings: ViewSettings, generator: torch.Generator) -> list[torch.Tensor]:
    """[global 1, global 2, local 1, …]: DINO's asymmetric blur (always on the first global view, rarely on
    the second, half the time on the local ones)."""
    views = [random_views(images, settings.global_size, settings.global_scale, p, settings, generator)
             for p in (1.0, 0.1)]
    views += [random_views(images, settings.local_size, settings.local_scale, 0.5, settings, generator)
              for _ in range(settings.n_local)]
    return views


class DINOHead(nn.Module):
    """MLP (GELU) → l2-normalised bottleneck → K prototype scores through unit-norm weight vectors."""

    def __init__(self, in_dim: int, out_dim: int = 1024, hidden_dim: int = 512, bottleneck_dim: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim))
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        # Weight normalisation with the gain fixed at 1: only the directions of the prototypes are learnt,
        # which DINO found keeps training stable.
        self.prototypes = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        nn.init.trunc_normal_(self.prototypes, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1)
        return F.linear(x, F.normalize(self.prototypes, dim=-1))


class DINOLoss(nn.Module):
    """Cross-entropy between the centred, sharpened teacher and the student, over pairs of different views."""

    def __init__(self, out_dim: int, student_temperature: float = 0.1, center_momentum: float = 0.9) -> None:
        super().__init__()
        self.student_temperature = student_temperature
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.centred = False  # whether the running mean has been started

    def forward(self, student: list[torch.Tensor], teacher: list[torch.Tensor], teacher_temperature: float) -> torch.Tensor:
        """``student``: scores per view (globals first); ``teacher``: scores per global view."""
        if not self.centred:
            # Start the running mean at the first batch's mean, not at zero: a zero centre lets one
            # prototype win for every image until the mean catches up, an artificially low first loss.
            self.center.copy_(torch.cat(teacher).detach().mean(0, keepdim=True))
            self.centred = True
        targets = [F.softmax((t - self.center) / teacher_temperature, dim=-1).detach() for t in teacher]
        log_probabilities = [F.log_softmax(s / self.student_temperature, dim=-1) for s in student]
        terms = [-(target * log_p).sum(-1).mean()
                 for i, target in enumerate(targets) for j, log_p in enumerate(log_probabilities) if i != j]
        self.update_center(torch.cat(teacher))
        return torch.stack(terms).mean()

    @torch.no_grad()
    def update_center(self, teacher_scores: torch.Tensor) -> None:
        # Centring stops one prototype from winning everything; sharpening stops the uniform collapse.
        batch_center = teacher_scores.mean(0, keepdim=True)
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)
