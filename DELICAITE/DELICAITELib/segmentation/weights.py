"""Saving and loading segmentation weights as checksummed model files (weights.npz + model.json).

The network's state dict goes to weights.npz as plain float32 arrays, the :class:`SegmentationConfig`
and the training summary to model.json; loading verifies both sha256 sums and never unpickles.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import monai
import numpy as np
import torch
from torch import nn

from .. import __version__ as DELICAITE_VERSION
from ..errors import ModelFileError
from ..storage import read_artifact, write_artifact
from .network import CLASS_NAMES, FORMAT_NAME, FORMAT_VERSION, SegmentationConfig, build_network

SHIPPED_WEIGHTS = Path(__file__).resolve().parents[1] / "resources" / "liver_seg"


def state_arrays(network: nn.Module) -> dict[str, np.ndarray]:
    """The network's parameters and buffers as float32 numpy arrays keyed by state-dict name."""
    return {name: t.detach().cpu().numpy().astype(np.float32) for name, t in network.state_dict().items()}


def load_state_arrays(network: nn.Module, arrays: dict[str, np.ndarray], source) -> None:
    """Copy ``arrays`` into ``network``; ModelFileError when names or shapes do not match."""
    state = network.state_dict()
    if set(arrays) != set(state):
        missing, extra = sorted(set(state) - set(arrays)), sorted(set(arrays) - set(state))
        raise ModelFileError(
            f"weights in {source} do not fit the network (missing {missing[:3]}, unexpected {extra[:3]}); "
            "the file belongs to another architecture"
        )
    for name, tensor in state.items():
        if tuple(arrays[name].shape) != tuple(tensor.shape):
            raise ModelFileError(
                f"weights in {source}: {name} has shape {arrays[name].shape}, the network expects "
                f"{tuple(tensor.shape)}; the file belongs to another architecture"
            )
    network.load_state_dict({name: torch.from_numpy(np.asarray(a, dtype=np.float32)) for name, a in arrays.items()})


def save_segmentation_weights(network: nn.Module, config: SegmentationConfig, directory, extra: dict | None = None) -> dict:
    """Write ``directory``/weights.npz + model.json; returns the metadata as written."""
    meta = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "classes": list(CLASS_NAMES),
        "library_versions": {"delicaite": DELICAITE_VERSION, "torch": torch.__version__,
                              "monai": monai.__version__, "numpy": np.__version__},
        **(extra or {}),
    }
    return write_artifact(directory, state_arrays(network), meta, config.format_name, config.format_version)


def load_segmentation_weights(path=None) -> tuple[nn.Module, SegmentationConfig, dict]:
    """(network in eval mode on the CPU, its config, model.json metadata) from a model directory.

    ``path`` None loads the shipped weights. Both checksums are verified first; a missing, corrupt or
    foreign file raises ModelFileError.
    """
    path = SHIPPED_WEIGHTS if path is None else Path(path)
    arrays, meta, meta_path = read_artifact(path, FORMAT_NAME, FORMAT_VERSION)
    if not isinstance(meta.get("config"), dict):
        raise ModelFileError(f"model file {meta_path} has no segmentation config; re-export the model")
    try:
        config = SegmentationConfig.from_dict(meta["config"])
    except ModelFileError:
        raise
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"model file {meta_path} has an invalid segmentation config ({exc})") from None
    network = build_network(config)
    load_state_arrays(network, arrays, meta_path)
    return network.eval(), config, meta


# An automatic tumour is kept only from weights whose tumour output overlapped held-out reference
# tumours at least this well; below it the three largest slices would come from the wrong places.
TRUSTED_TUMOUR_DICE = 0.7
LOVO_FILE = "lovo.json"


def held_out_tumour_dice(path=None) -> float | None:
    """Mean tumour Dice of these weights' recipe on volumes it did not train on, or None when unmeasured.

    Read from ``lovo.json`` beside the weights (Testing/benchmarks/seg_lovo.py) or else from the
    validation Dice of the kept epoch in model.json's training history (`train-seg --val`).
    """
    import json

    path = SHIPPED_WEIGHTS if path is None else Path(path)
    lovo = path / LOVO_FILE
    if lovo.is_file():
        folds = json.loads(lovo.read_text(encoding="utf-8")).get("folds", {})
        scores = [f["tumour_dice"] for f in folds.values() if isinstance(f, dict) and "tumour_dice" in f]
        return float(np.mean(scores)) if scores else None
    try:
        history = json.loads((path / "model.json").read_text(encoding="utf-8"))["training"]["history"]
        scored = [h for h in history if "val_mean_dice" in h]
        best = max(scored, key=lambda h: h["val_mean_dice"])
        scores = [v["tumour"] for v in best["val_dice"].values() if "tumour" in v]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return float(np.mean(scores)) if scores else None
