"""A vision transformer in the DINOv2 architecture, written in plain torch (no timm, no xFormers).

The module tree mirrors facebookresearch/dinov2 (``DinoVisionTransformer`` built with block_chunks=0,
the layout of the published hub checkpoints), so ``state_dict()`` has exactly the official keys and
shapes and an official ViT-S/B/L checkpoint, with or without registers, loads with ``strict=True``:

    cls_token (1,1,D)  pos_embed (1,1+G²,D)  mask_token (1,D)  [register_tokens (1,R,D)]
    patch_embed.proj.{weight,bias}   norm.{weight,bias}
    blocks.{i}.norm1 / attn.qkv / attn.proj / ls1.gamma / norm2 / mlp.fc1 / mlp.fc2 / ls2.gamma

Pre-norm blocks, LayerNorm eps 1e-6, GELU MLP of ratio 4, qkv bias, layer scale. The positional
embedding is interpolated bicubically to the input's patch grid as the official
``interpolate_pos_encoding`` does (the CLS position kept as is).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import DelicaiteError

# name → (embed_dim, depth, num_heads), as dinov2/models/vision_transformer.py builds them.
ARCHITECTURES = {"vit_small": (384, 12, 6), "vit_base": (768, 12, 12), "vit_large": (1024, 24, 16)}
# The official convention (head dim 64) for checkpoints, which carry no head count.
OFFICIAL_HEADS = {dim: heads for dim, _, heads in ARCHITECTURES.values()}
LAYER_NORM_EPS = 1e-6
MLP_RATIO = 4
# DINOv2's training config (layerscale: 1.0e-05); checkpoints overwrite it.
LAYERSCALE_INIT = 1e-5
# Official hub settings: plain models interpolate with offset 0.1 and no antialias; the *_reg models
# were trained with offset 0 and antialias on, so a checkpoint with registers gets those.
PLAIN_INTERPOLATION = {"interpolate_offset": 0.1, "interpolate_antialias": False}
REGISTER_INTERPOLATION = {"interpolate_offset": 0.0, "interpolate_antialias": True}
# Wrappers and prefixes of DINO training checkpoints ({"teacher": {"backbone.…"}}, DDP "module.").
CHECKPOINT_WRAPPERS = ("teacher", "model", "state_dict", "module")
CHECKPOINT_WRAPPER_PREFIXES = ("model.", "state_dict.", "module.")
CHECKPOINT_PREFIXES = ("teacher.", "backbone.", *CHECKPOINT_WRAPPER_PREFIXES)
TRAINING_HEADS = ("dino_head", "ibot_head")


class PatchEmbed(nn.Module):
    """Non-overlapping patch_size² patches → D-dim tokens (a strided convolution)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, gh, gw) → (B, gh·gw, D)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        # Same maths as the official softmax(q·kᵀ/√d)·v, scale 1/√head_dim.
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1 x)), then x + ls2(mlp(norm2 x))."""

    def __init__(self, dim: int, num_heads: int, layerscale_init: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim, layerscale_init)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, dim * MLP_RATIO)
        self.ls2 = LayerScale(dim, layerscale_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoViT(nn.Module):
    """DINOv2 backbone. Defaults are the official ViT-S/14 (img_size 518 → a 37 × 37 position grid).

    Tokens are ordered [CLS, registers…, patches…] as in the official model.
    """

    def __init__(
        self, embed_dim: int = 384, depth: int = 12, num_heads: int = 6, patch_size: int = 14,
        img_size: int = 518, in_chans: int = 3, num_register_tokens: int = 0,
        layerscale_init: float = LAYERSCALE_INIT, interpolate_offset: float = 0.1,
        interpolate_antialias: bool = False,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise DelicaiteError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if img_size % patch_size:
            raise DelicaiteError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.embed_dim, self.depth, self.num_heads = embed_dim, depth, num_heads
        self.patch_size, self.img_size, self.in_chans = patch_size, img_size, in_chans
        self.num_register_tokens = num_register_tokens
        self.layerscale_init = layerscale_init
        self.interpolate_offset, self.interpolate_antialias = interpolate_offset, interpolate_antialias
        grid = img_size // patch_size

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, embed_dim))
        if num_register_tokens:
            self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, layerscale_init) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))  # used by iBOT masking in training only
        if self.cls_token.device.type != "meta":  # a shapes-only model (loading) needs no random values
            self._init_weights()

    @classmethod
    def named(cls, name: str, **overrides) -> DinoViT:
        """``DinoViT.named("vit_small", img_size=224)``: an official size by name, other args overridable."""
        if name not in ARCHITECTURES:
            raise DelicaiteError(f"unknown ViT architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
        embed_dim, depth, num_heads = ARCHITECTURES[name]
        return cls(**{"embed_dim": embed_dim, "depth": depth, "num_heads": num_heads, **overrides})

    def _init_weights(self) -> None:
        # The official initialisation (timm style): truncated normal 0.02, zero biases, tiny CLS.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.num_register_tokens:
            nn.init.normal_(self.register_tokens, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def architecture(self) -> dict:
        """The constructor arguments: ``DinoViT(**model.architecture())`` rebuilds the same shapes."""
        return {
            "embed_dim": self.embed_dim, "depth": self.depth, "num_heads": self.num_heads,
            "patch_size": self.patch_size, "img_size": self.img_size, "in_chans": self.in_chans,
            "num_register_tokens": self.num_register_tokens, "layerscale_init": self.layerscale_init,
            "interpolate_offset": self.interpolate_offset, "interpolate_antialias": self.interpolate_antialias,
        }

    def interpolated_pos_embed(self, grid_rows: int, grid_cols: int) -> torch.Tensor:
        """Positional embedding (1, 1+rows·cols, D) for a patch grid; the stored one when it matches."""
        side = self.img_size // self.patch_size
        if (grid_rows, grid_cols) == (side, side):
            return self.pos_embed
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, side, side, self.embed_dim).permute(0, 3, 1, 2)
        if self.interpolate_offset:
            # The official scale factor (grid + offset) / side; the offset avoids a floor one short.
            scale = ((grid_rows + self.interpolate_offset) / side, (grid_cols + self.interpolate_offset) / side)
            grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=self.interpolate_antialias)
        else:
            grid = F.interpolate(grid, size=(grid_rows, grid_cols), mode="bicubic",
                                 antialias=self.interpolate_antialias)
        if grid.shape[-2:] != (grid_rows, grid_cols):
            raise DelicaiteError(f"position grid interpolated to {tuple(grid.shape[-2:])}, "
                                 f"expected {(grid_rows, grid_cols)}")
        grid = grid.permute(0, 2, 3, 1).reshape(1, grid_rows * grid_cols, self.embed_dim)
        return torch.cat((pos[:, :1], grid), dim=1).to(self.pos_embed.dtype)

    def prepare_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, 1+R+N, D): patch tokens, CLS, positions, then the registers (no position)."""
        if images.ndim != 4 or images.shape[1] != self.in_chans:
            raise DelicaiteError(f"expected images (B, {self.in_chans}, H, W), got {tuple(images.shape)}")
        rows, cols = images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size
        if rows == 0 or cols == 0:
            raise DelicaiteError(f"images of {tuple(images.shape[-2:])} px are smaller than one "
                                 f"{self.patch_size}-px patch")
        tokens = self.patch_embed(images)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + self.interpolated_pos_embed(rows, cols)
        if self.num_register_tokens:
            registers = self.register_tokens.expand(tokens.shape[0], -1, -1)
            tokens = torch.cat((tokens[:, :1], registers, tokens[:, 1:]), dim=1)
        return tokens

    def block_tokens(self, images: torch.Tensor, blocks: Iterable[int]) -> dict[int, torch.Tensor]:
        """Normed tokens (B, 1+R+N, D) after each requested block (1-based: 4 = output of the 4th block).

        Runs only as many blocks as the deepest one asked for; the final ``norm`` is applied to each
        output, as DINOv2's ``get_intermediate_layers(norm=True)``.
        """
        wanted = sorted(set(int(b) for b in blocks))
        if not wanted or wanted[0] < 1 or wanted[-1] > self.depth:
            raise DelicaiteError(f"blocks must be between 1 and {self.depth}, got {wanted}")
        outputs = {}
        tokens = self.prepare_tokens(images)
        for number, block in enumerate(self.blocks[: wanted[-1]], start=1):
            tokens = block(tokens)
            if number in wanted:
                outputs[number] = self.norm(tokens)
        return outputs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The normed CLS token of the last block (B, D), as the official model's ``forward``."""
        return self.block_tokens(images, [self.depth])[self.depth][:, 0]


def _flatten_checkpoint(state: Mapping) -> dict[str, torch.Tensor]:
    """Tensors of a state dict or a training checkpoint ({"teacher": {...}}), keys dotted; others dropped."""
    flat: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if isinstance(value, torch.Tensor):
            flat[str(key)] = value
        elif isinstance(value, Mapping) and key in CHECKPOINT_WRAPPERS:
            flat.update({f"{key}.{k}": v for k, v in _flatten_checkpoint(value).items()})
    return flat


def _strip(key: str, prefixes: tuple[str, ...]) -> str:
    while (prefix := next((p for p in prefixes if key.startswith(p)), None)) is not None:
        key = key[len(prefix):]
    return key


def official_state_dict(state: Mapping) -> dict[str, torch.Tensor]:
    """A checkpoint's backbone tensors under the official keys (float32).

    Strips the ``teacher.backbone.`` / ``backbone.`` / ``module.`` prefixes of DINO training
    checkpoints (keeping the teacher when both networks are present), drops the dino_head / ibot_head
    projection heads and maps chunked blocks (``blocks.{chunk}.{i}.``) back to ``blocks.{i}.``.
    """
    flat = {_strip(key, CHECKPOINT_WRAPPER_PREFIXES): value for key, value in _flatten_checkpoint(state).items()}
    if any(key.startswith("teacher.") for key in flat):
        flat = {key: value for key, value in flat.items() if key.startswith("teacher.")}
    cleaned = {}
    for key, value in flat.items():
        key = _strip(key, CHECKPOINT_PREFIXES)
        if key.split(".", 1)[0] in TRAINING_HEADS:
            continue
        key = re.sub(r"^blocks\.\d+\.(\d+)\.", r"blocks.\1.", key)
        # A copy: the loaded model must not share storage with the caller's tensors.
        cleaned[key] = value.detach().to(torch.float32, copy=True)
    return cleaned


def _infer_architecture(state: Mapping[str, torch.Tensor], num_heads: int | None = None) -> dict:
    """Constructor arguments from tensor shapes; the head count, which no shape carries, as given
    (a DELICAITE file records it) or by the official convention."""
    missing = [k for k in ("cls_token", "pos_embed", "patch_embed.proj.weight") if k not in state]
    if missing:
        raise DelicaiteError(
            f"not a DINOv2 backbone state dict: no {', '.join(missing)} "
            f"(found {', '.join(sorted(state)[:4]) or 'no tensors'}…); export the backbone's state_dict()"
        )
    if any(".mlp.w12." in key for key in state):
        raise DelicaiteError("ViT-g checkpoints (SwiGLU feed-forward, mlp.w12) are not supported; "
                             "use a ViT-S/14, ViT-B/14 or ViT-L/14 DINOv2 checkpoint")
    for key in ("cls_token", "pos_embed", "register_tokens"):
        if key in state and state[key].ndim != 3:
            raise DelicaiteError(f"{key} has shape {tuple(state[key].shape)}; expected (1, tokens, D)")
    embed_dim = int(state["cls_token"].shape[-1])
    proj = state["patch_embed.proj.weight"]
    if proj.ndim != 4 or proj.shape[-1] != proj.shape[-2]:
        raise DelicaiteError(f"patch_embed.proj.weight has shape {tuple(proj.shape)}; expected (D, C, p, p)")
    positions = int(state["pos_embed"].shape[1]) - 1
    side = math.isqrt(max(positions, 0))
    if side * side != positions or side == 0:
        raise DelicaiteError(f"pos_embed holds {positions} patch positions, not a square grid")
    block_ids = {int(m.group(1)) for key in state if (m := re.match(r"blocks\.(\d+)\.", key))}
    if not block_ids or block_ids != set(range(max(block_ids) + 1)):
        raise DelicaiteError(f"the checkpoint's blocks are not numbered 0..n-1 (found {sorted(block_ids)})")
    heads = num_heads or OFFICIAL_HEADS.get(embed_dim) or (embed_dim // 64 if embed_dim % 64 == 0 else None)
    if heads is None:
        raise DelicaiteError(f"cannot tell the number of attention heads for embed_dim {embed_dim}; "
                             "save the model with save_encoder, which records it")
    registers = int(state["register_tokens"].shape[1]) if "register_tokens" in state else 0
    return {
        "embed_dim": embed_dim, "depth": len(block_ids), "num_heads": heads, "patch_size": int(proj.shape[-1]),
        "img_size": side * int(proj.shape[-1]), "in_chans": int(proj.shape[1]), "num_register_tokens": registers,
        **(REGISTER_INTERPOLATION if registers else PLAIN_INTERPOLATION),
    }


def load_dinov2_state_dict(state: Mapping, architecture: Mapping | None = None) -> DinoViT:
    """A DinoViT (eval mode) holding the weights of an official-layout state dict or DINO checkpoint.

    The architecture is read from the shapes; ``architecture`` (as recorded by ``DinoViT.architecture``)
    supplies the head count and interpolation settings and must agree with the shapes. Raises
    DelicaiteError for a missing or extra key, a wrong shape, or an unsupported (ViT-g) model.
    """
    tensors = official_state_dict(state)
    inferred = _infer_architecture(tensors, None if architecture is None else architecture.get("num_heads"))
    if architecture is not None:
        for name, value in inferred.items():
            if name in architecture and name not in ("num_heads", *PLAIN_INTERPOLATION) and architecture[name] != value:
                raise DelicaiteError(f"the weights give {name}={value} but the metadata says {architecture[name]}; "
                                     "the model files do not belong together: re-export the model")
        inferred.update({k: v for k, v in architecture.items() if k in ("num_heads", "layerscale_init",
                                                                        *PLAIN_INTERPOLATION)})
    with torch.device("meta"):  # shapes only: skips the random initialisation the weights replace
        model = DinoViT(**inferred)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = [f"{what} {', '.join(keys[:3])}{'…' if len(keys) > 3 else ''}"
                 for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise DelicaiteError(f"the checkpoint is not a complete DINOv2 backbone ({'; '.join(parts)}); "
                             "export the full backbone state_dict()")
    wrong = [f"{k} {tuple(tensors[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if tensors[k].shape != v.shape]
    if wrong:
        raise DelicaiteError(f"the checkpoint has wrong shapes: {'; '.join(wrong[:3])}")
    model.load_state_dict(tensors, strict=True, assign=True)
    return model.eval()
