"""Self-supervised ViT features of a case (PAPER.md, "Features": DINOv2, transformer block 4).

Per preprocessed 224 × 224 crop (one channel, z-scored, repeated to the 3 channels the ViT takes) and
per block: [CLS token ‖ mean of the patch tokens] of the normed block output, 2·D numbers (registers
left out). A case's features are the mean over its slices, per phase: 2 phases × 2 × D columns, 1536
for ViT-S (D = 384), named ``deep_vit_b{block}_{phase}_{cls|patch}_{k:03d}``, e.g.
``deep_vit_b4_ap_cls_000``.

Weights files: ``save_encoder`` writes the library's checksummed model files (weights.npz in the
official DINOv2 key layout + model.json); ``load_encoder`` reads those, or an official DINOv2 ``.pth``
checkpoint through torch's restricted (weights-only) unpickler. Nothing is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ... import __version__ as DELICAITE_VERSION
from ...errors import DelicaiteError, ModelFileError
from ...storage import METADATA_FILE, read_artifact, write_artifact
from ...preprocessing import resize_crops
from .vit import DinoViT, load_dinov2_state_dict

DEFAULT_BLOCK = 4  # the paper's choice among the 12 blocks of its ViT
FORMAT_NAME = "delicaite-vit-encoder"
FORMAT_VERSION = 1
TORCH_CHECKPOINT_SUFFIXES = (".pth", ".pt")
BATCH_SIZE = 16  # crops per forward pass: bounds memory on long slice lists


def feature_columns(embed_dim: int, block: int = DEFAULT_BLOCK, phases=("AP", "VP")) -> list[str]:
    """Column names in case_features order: per phase, D CLS columns then D patch-mean columns."""
    return [f"deep_vit_b{block}_{phase.lower()}_{part}_{k:03d}"
            for phase in phases for part in ("cls", "patch") for k in range(embed_dim)]


class ViTEncoder:
    """A DinoViT in eval mode on a device, turning preprocessed crops into block features."""

    def __init__(self, model: DinoViT, device: str | torch.device = "cpu", input_size: int | None = None) -> None:
        """``input_size``: resize crops to this many px first (None: as given). An encoder pretrained on
        small views (pretrain.py) records its view size here, so it sees crops at the scale it learned."""
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.input_size = None if input_size is None else int(input_size)

    @property
    def depth(self) -> int:
        return self.model.depth

    @property
    def embed_dim(self) -> int:
        return self.model.embed_dim

    def _images(self, crops: np.ndarray) -> torch.Tensor:
        crops = np.asarray(crops)
        if crops.ndim != 3 or 0 in crops.shape:
            raise DelicaiteError(f"expected crops (n, 224, 224) from preprocess_case, got shape {crops.shape}")
        if not np.all(np.isfinite(crops)):
            raise DelicaiteError("the crops hold NaN or infinite values; preprocess the slices with preprocess_case")
        images = torch.from_numpy(np.ascontiguousarray(resize_crops(crops, self.input_size))).to(self.device)
        # One z-scored CT channel repeated to the RGB channels the ViT was built for.
        return images.unsqueeze(1).expand(-1, self.model.in_chans, -1, -1)

    def _pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1+R+N, D) → (B, 2D): the CLS token and the mean of the patch tokens (registers skipped)."""
        patches = tokens[:, 1 + self.model.num_register_tokens:]
        return torch.cat((tokens[:, 0], patches.mean(dim=1)), dim=1)

    def _features(self, crops: np.ndarray, blocks: list[int]) -> np.ndarray:
        images = self._images(crops)
        chunks = []
        with torch.no_grad():
            for start in range(0, images.shape[0], BATCH_SIZE):
                outputs = self.model.block_tokens(images[start:start + BATCH_SIZE], blocks)
                chunks.append(torch.stack([self._pooled(outputs[b]) for b in blocks]))
        return torch.cat(chunks, dim=1).cpu().numpy().astype(np.float32, copy=False)

    def slice_features(self, crops: np.ndarray, block: int = DEFAULT_BLOCK) -> np.ndarray:
        """(n, 224, 224) float32 crops → (n, 2·D) float32: [CLS ‖ mean patch token] after ``block``."""
        return self._features(crops, [int(block)])[0]

    def slice_features_all_blocks(self, crops: np.ndarray) -> np.ndarray:
        """(depth, n, 2·D): the same features after every block, from one pass through the network."""
        return self._features(crops, list(range(1, self.depth + 1)))

    def case_features(self, arrays: Mapping[str, np.ndarray], block: int = DEFAULT_BLOCK) -> dict[str, float]:
        """``{"AP": (3, 224, 224), "VP": (3, 224, 224)}`` → 2 phases × 2 × D named floats (mean over slices)."""
        if not arrays:
            raise DelicaiteError("no phases given: pass the {'AP': …, 'VP': …} arrays of preprocess_case")
        values = np.concatenate([self.slice_features(crops, block).mean(axis=0) for crops in arrays.values()])
        names = feature_columns(self.embed_dim, block, tuple(arrays))
        return dict(zip(names, (float(v) for v in values)))


def save_encoder(encoder: ViTEncoder, directory, note: str | None = None) -> dict:
    """Write weights.npz (official DINOv2 keys) + model.json; returns the metadata as written."""
    state = {key: value.detach().cpu().numpy() for key, value in encoder.model.state_dict().items()}
    metadata = {
        "architecture": encoder.model.architecture(),
        "default_block": DEFAULT_BLOCK,
        "input_size": encoder.input_size,
        "features_per_slice": 2 * encoder.embed_dim,
        "how_made": note or "not stated",
        "state_dict_layout": "facebookresearch/dinov2 DinoVisionTransformer (block_chunks=0)",
        "state_dict": {key: list(array.shape) for key, array in state.items()},
        "library_versions": {"delicaite": DELICAITE_VERSION, "torch": torch.__version__, "numpy": np.__version__},
    }
    return write_artifact(directory, state, metadata, FORMAT_NAME, FORMAT_VERSION)


def _read_torch_checkpoint(path: Path) -> Mapping:
    try:
        # weights_only: the restricted unpickler, which refuses any object other than tensors and containers.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure of an untrusted file is the user's to fix
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{path} is not a plain tensor checkpoint ({reason[:160]}); save only the backbone's "
            "state_dict() with torch.save"
        ) from None
    if not isinstance(state, Mapping):
        raise ModelFileError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return state


def load_encoder(path, device: str | torch.device = "cpu") -> ViTEncoder:
    """An encoder from save_encoder's directory (or its model.json) or an official DINOv2 .pth file."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in TORCH_CHECKPOINT_SUFFIXES:
        state, architecture, input_size = _read_torch_checkpoint(path), None, None
    elif path.is_dir() or path.name == METADATA_FILE or not path.exists():
        state, metadata, _ = read_artifact(path, FORMAT_NAME, FORMAT_VERSION)
        architecture, input_size = metadata.get("architecture"), metadata.get("input_size")
        if not isinstance(architecture, dict):
            raise ModelFileError(f"model file {path} has no architecture; re-export it with save_encoder")
    else:
        raise ModelFileError(f"{path} is neither an encoder directory ({METADATA_FILE} + weights.npz) "
                             "nor a DINOv2 checkpoint (.pth)")
    try:
        model = load_dinov2_state_dict(state, architecture)
    except ModelFileError:
        raise
    except (DelicaiteError, TypeError) as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return ViTEncoder(model, device, input_size)
