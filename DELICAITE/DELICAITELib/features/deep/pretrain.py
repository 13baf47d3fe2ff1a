"""Offline self-supervised pretraining of a small ViT on a cohort's own crops with DINO (Caron et al. 2021).

The study used DINOv2 features (PAPER.md, "Features"). Where official weights are not wanted or not
available, ``pretrain_vit`` learns an encoder from unlabelled one-channel crops or patches alone: a
student ViT + projection head sees all multi-crop views, a teacher (the exponential moving average of
the student) sees the two global views, and the student learns to match the teacher's centred,
sharpened output (dino.py). The teacher backbone is returned, as DINO evaluates it, as a ViTEncoder that
``save_encoder`` stores like any other encoder.

Schedules follow DINO: linear learning-rate warm-up then cosine decay (AdamW), weight decay rising
0.04 → 0.4 on weights only, teacher momentum rising from ``teacher_momentum`` to 1, teacher temperature
warming up to its final value, gradient clipping, and the last head layer frozen in the first epoch.
The teacher momentum starts at 0.99 rather than DINO's 0.996 (tuned for hundreds of epochs): in a run of
a few hundred steps a slower teacher hardly moves, and its features separated tumour from liver
patches less well (measured on IRCADb-17). Deterministic on the CPU for a given seed and thread count.

What to expect of a short run: the loss dips in the first epochs (one prototype briefly wins before the
centre catches up), rises to near ln(out_dim) as the network becomes invariant to the augmentations,
then falls slowly; the backbone's block features improve long before the loss says much.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import DelicaiteError
from .dino import DINOHead, DINOLoss, ViewSettings, multi_crop
from .encoder import ViTEncoder
from .vit import DinoViT

# A small ViT for a few thousand crops; 8-px patches give a 4 × 4 token grid on 32-px global views.
# Layer scale starts at 1 (DINO's ViTs have none): DINOv2's 1e-5 keeps every block near the identity,
# and a short run from scratch then learns next to nothing (measured on IRCADb-17 patches).
SMALL_ARCHITECTURE = {"embed_dim": 192, "depth": 6, "num_heads": 3, "patch_size": 8, "layerscale_init": 1.0}
GRADIENT_CLIP = 3.0
WEIGHT_DECAY = (0.04, 0.4)
FINAL_LR_FRACTION = 0.01


@dataclass
class PretrainResult:
    encoder: ViTEncoder  # the teacher backbone, in eval mode
    losses: list[float]  # mean DINO loss per epoch
    settings: dict  # everything needed to say how the encoder was made


class DINOModel(nn.Module):
    """Backbone + projection head, the same for student and teacher; views of one size share a pass."""

    def __init__(self, backbone: DinoViT, head: DINOHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        scores: list[torch.Tensor] = []
        start = 0
        while start < len(views):
            end = start
            while end < len(views) and views[end].shape == views[start].shape:
                end += 1
            batch = torch.cat(views[start:end])
            batch = batch.expand(-1, self.backbone.in_chans, -1, -1)  # one CT channel to the model's channels
            scores += list(self.head(self.backbone(batch)).chunk(end - start))
            start = end
        return scores


def cosine_schedule(start: float, end: float, steps: int, warmup_steps: int = 0, warmup_from: float = 0.0) -> np.ndarray:
    """Per-step values: linear warm-up from ``warmup_from`` to ``start``, then a cosine from start to end."""
    warmup = np.linspace(warmup_from, start, warmup_steps, endpoint=False)
    t = np.arange(steps - warmup_steps) / max(steps - warmup_steps - 1, 1)
    return np.concatenate([warmup, end + 0.5 * (start - end) * (1 + np.cos(np.pi * t))])


def parameter_groups(model: nn.Module) -> list[dict]:
    """Weight decay on weight matrices only, not on biases, norms, layer scales or tokens (as DINO).
    The tokens (CLS, positions, registers, mask) are the parameters with a leading axis of 1."""
    def is_weight(p: nn.Parameter) -> bool:
        return p.ndim > 1 and p.shape[0] > 1

    decayed = [p for p in model.parameters() if p.requires_grad and is_weight(p)]
    others = [p for p in model.parameters() if p.requires_grad and not is_weight(p)]
    return [{"params": decayed}, {"params": others, "weight_decay": 0.0}]


@torch.no_grad()
def update_teacher(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)


def as_pixels(images: np.ndarray, image_size: int) -> torch.Tensor:
    """(N, 1, H, W) float32, shrunk (antialiased) so the longer side is at most twice the global view:
    views are resampled without antialiasing, and even the smallest global crop then keeps its detail."""
    images = np.asarray(images)
    if images.ndim != 3 or min(images.shape) == 0:
        raise DelicaiteError(f"expected images (N, H, W) of one-channel crops, got shape {images.shape}")
    if not np.all(np.isfinite(images)):
        raise DelicaiteError("the images hold NaN or infinite values")
    pixels = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    longest = max(pixels.shape[-2:])
    if longest > 2 * image_size:
        pixels = F.interpolate(pixels, scale_factor=2 * image_size / longest, mode="bilinear", antialias=True)
    return pixels


@dataclass(frozen=True)
class Schedules:
    """DINO's per-step learning rate, weight decay and teacher momentum, and per-epoch teacher temperature."""

    learning_rate: np.ndarray
    weight_decay: np.ndarray
    teacher_momentum: np.ndarray
    teacher_temperature: np.ndarray


def dino_schedules(steps_per_epoch: int, epochs: int, warmup_epochs: int, learning_rate: float,
                   teacher_momentum: float, warmup_teacher_temperature: float, teacher_temperature: float) -> Schedules:
    total = steps_per_epoch * epochs
    return Schedules(
        learning_rate=cosine_schedule(learning_rate, learning_rate * FINAL_LR_FRACTION, total,
                                      warmup_epochs * steps_per_epoch),
        weight_decay=cosine_schedule(*WEIGHT_DECAY, total),
        teacher_momentum=cosine_schedule(teacher_momentum, 1.0, total),
        teacher_temperature=np.concatenate([  # linear over the warm-up epochs, then constant
            np.linspace(warmup_teacher_temperature, teacher_temperature, warmup_epochs, endpoint=False),
            np.full(epochs, teacher_temperature)]),
    )


def train_step(student: DINOModel, teacher: DINOModel, loss_fn: DINOLoss, optimizer: torch.optim.Optimizer,
               crops: list[torch.Tensor], temperature: float, freeze_prototypes: bool) -> float:
    """One DINO step: the student learns to match the teacher, then the teacher follows the student."""
    with torch.no_grad():
        teacher_scores = teacher(crops[:2])  # the teacher sees the global views only
    loss = loss_fn(student(crops), teacher_scores, temperature)
    if not torch.isfinite(loss):
        raise DelicaiteError(f"the DINO loss became {loss.item()}; lower the learning rate")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(student.parameters(), GRADIENT_CLIP)
    if freeze_prototypes:  # DINO keeps the last layer fixed in the first epoch, while the rest settles
        student.head.prototypes.grad = None
    optimizer.step()
    return loss.item()


def pretrain_vit(images: np.ndarray, *, architecture: dict | None = None, image_size: int = 32,
                 views: ViewSettings | None = None, epochs: int = 20, batch_size: int = 32,
                 learning_rate: float = 5e-4, warmup_epochs: int | None = None, out_dim: int = 1024,
                 teacher_momentum: float = 0.99, teacher_temperature: float = 0.04,
                 warmup_teacher_temperature: float = 0.04, student_temperature: float = 0.1,
                 seed: int = 0, progress: Callable[[str], None] | None = None) -> PretrainResult:
    """DINO-pretrain a ViT (``SMALL_ARCHITECTURE`` updated with ``architecture``) on unlabelled crops
    (N, H, W) float32, z-scored one-channel, for ``epochs`` passes over them, ``batch_size`` at a time.

    Global views are ``image_size`` px; ``views`` sets the rest of the multi-crop (default: 4 local views
    of half that size). ``learning_rate`` is the peak AdamW rate after the warm-up (a tenth of the epochs
    unless given). ``progress`` receives a line per epoch."""
    pixels = as_pixels(images, image_size)
    architecture = {**SMALL_ARCHITECTURE, **(architecture or {}), "img_size": image_size}
    views = replace(views or ViewSettings(local_size=image_size // 2), global_size=image_size)
    for size in (views.global_size, views.local_size):
        if size % architecture["patch_size"]:
            raise DelicaiteError(f"view size {size} px is not a multiple of the patch size {architecture['patch_size']}")
    torch.manual_seed(seed)  # the initial weights
    generator = torch.Generator().manual_seed(seed)  # the batches and the views
    backbone = DinoViT(**architecture)
    student = DINOModel(backbone, DINOHead(backbone.embed_dim, out_dim))
    teacher = copy.deepcopy(student).requires_grad_(False)
    loss_fn = DINOLoss(out_dim, student_temperature)
    optimizer = torch.optim.AdamW(parameter_groups(student), lr=learning_rate)
    batch_size = min(batch_size, len(pixels))
    steps_per_epoch = len(pixels) // batch_size  # the last partial batch is dropped: centring needs full ones
    warmup_epochs = max(1, epochs // 10) if warmup_epochs is None else warmup_epochs
    schedule = dino_schedules(steps_per_epoch, epochs, warmup_epochs, learning_rate, teacher_momentum,
                              warmup_teacher_temperature, teacher_temperature)

    losses: list[float] = []
    student.train()
    for epoch in range(epochs):
        order = torch.randperm(len(pixels), generator=generator)
        epoch_losses = []
        for step in range(steps_per_epoch):
            i = epoch * steps_per_epoch + step
            optimizer.param_groups[0].update(lr=schedule.learning_rate[i], weight_decay=schedule.weight_decay[i])
            optimizer.param_groups[1].update(lr=schedule.learning_rate[i])
            crops = multi_crop(pixels[order[step * batch_size:(step + 1) * batch_size]], views, generator)
            epoch_losses.append(train_step(student, teacher, loss_fn, optimizer, crops,
                                           float(schedule.teacher_temperature[epoch]), freeze_prototypes=epoch == 0))
            update_teacher(teacher, student, float(schedule.teacher_momentum[i]))
        losses.append(float(np.mean(epoch_losses)))
        if progress is not None:
            progress(f"DINO epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}")

    settings = {
        "method": "DINO (Caron et al. 2021), teacher backbone kept", "architecture": teacher.backbone.architecture(),
        "n_images": len(pixels), "image_shape": list(np.shape(images)[1:]), "epochs": epochs, "batch_size": batch_size,
        "learning_rate": learning_rate, "warmup_epochs": warmup_epochs, "out_dim": out_dim,
        "teacher_momentum": teacher_momentum, "teacher_temperature": teacher_temperature,
        "warmup_teacher_temperature": warmup_teacher_temperature, "student_temperature": student_temperature,
        "views": asdict(views), "seed": seed,
    }
    # the encoder sees whole crops at the global views' size, the scale it learned
    return PretrainResult(ViTEncoder(teacher.backbone.eval(), input_size=image_size), losses, settings)
