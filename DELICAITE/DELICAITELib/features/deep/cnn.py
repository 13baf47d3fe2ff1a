"""The supervised CNN per phase (PAPER.md, "Features"): a 2-D ResNet-18 on one-channel crops, one PD logit.

Each phase (AP, VP) gets its own network, trained on the preprocessed crops of the three largest tumour
slices, every crop carrying its patient's PD label. A case's features are, per phase, the mean over its
slices of the PD probability and of the 512 pooled features before the final layer. Networks are stored
as the library's checksummed model files (weights.npz + model.json, no pickle).
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import monai
import numpy as np
import torch
from monai.networks.nets import ResNet
from sklearn.metrics import roc_auc_score
from torch import nn

from ... import __version__ as DELICAITE_VERSION
from ...errors import DelicaiteError, ModelFileError
from ...storage import METADATA_FILE, read_artifact, write_artifact
from ...preprocessing import resize_crops, training_augmentation

FORMAT_NAME = "delicaite-phase-cnn"
FORMAT_VERSION = 1
N_FEATURES = 512  # ResNet-18's last stage width: the pooled vector the final layer reads
MIN_CROP_SIDE = 32  # five halvings bring 32 px to 1 px; smaller crops leave layer4 nothing to see
PREDICT_BATCH = 32
# torchvision's ResNet-18 layout: a stride-2 7×7 stem (MONAI's default stride is 1, four times the work
# and a 14×14 instead of 7×7 layer4 grid at 224 px).
ARCHITECTURE = {
    "name": "resnet18", "block": "basic", "layers": [2, 2, 2, 2], "block_inplanes": [64, 128, 256, 512],
    "spatial_dims": 2, "n_input_channels": 1, "conv1_t_size": 7, "conv1_t_stride": 2, "num_classes": 1,
}


def build_resnet18() -> ResNet:
    """A freshly initialised 2-D ResNet-18 with one input channel and one output logit."""
    settings = {key: value for key, value in ARCHITECTURE.items() if key != "name"}
    return ResNet(**settings)


@dataclass
class EpochRecord:
    """What the progress callback receives after each epoch (validation entries are None without one)."""

    epoch: int
    epochs: int
    loss: float
    validation_loss: float | None = None
    validation_auc: float | None = None


@dataclass
class PhaseCNN:
    """A trained network for one phase and what it was trained on; predicts per crop."""

    network: ResNet
    input_size: tuple[int, int]
    phase: str | None = None
    settings: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def logits_and_features(self, crops) -> tuple[np.ndarray, np.ndarray]:
        """(logits (n,), pooled features (n, 512)) of crops (n, H, W), in one pass."""
        pixels = check_crops(crops, self.input_size)
        captured: list[torch.Tensor] = []
        # The final layer's input is the pooled feature vector; a hook reads it without copying forward().
        hook = self.network.fc.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0]))
        logits = []
        self.network.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(pixels), PREDICT_BATCH):
                    batch = torch.from_numpy(pixels[start:start + PREDICT_BATCH, None])
                    logits.append(self.network(batch)[:, 0])
        finally:
            hook.remove()
        return torch.cat(logits).numpy().astype(np.float64), torch.cat(captured).numpy().astype(np.float64)

    def predict_proba(self, crops) -> np.ndarray:
        """PD probability (n,) per crop of crops (n, H, W)."""
        logits, _ = self.logits_and_features(crops)
        return 1.0 / (1.0 + np.exp(-logits))

    def penultimate_features(self, crops) -> np.ndarray:
        """The 512 pooled features (n, 512) per crop, the input of the final layer."""
        return self.logits_and_features(crops)[1]


def check_crops(crops, size: tuple[int, int] | None = None) -> np.ndarray:
    """Crops as a float32 (n, H, W) array; DelicaiteError for a wrong shape, size or non-finite pixels."""
    pixels = np.asarray(crops, dtype=np.float32)
    if pixels.ndim != 3 or len(pixels) == 0:
        raise DelicaiteError(f"crops must be a non-empty (n, height, width) array, got shape {pixels.shape}; "
                             "stack the preprocessed slices of one phase")
    if size is not None and tuple(pixels.shape[1:]) != tuple(size):
        raise DelicaiteError(f"crops are {pixels.shape[1]}×{pixels.shape[2]} but the CNN was trained on "
                             f"{size[0]}×{size[1]}; preprocess with the same size")
    if min(pixels.shape[1:]) < MIN_CROP_SIDE:
        raise DelicaiteError(f"crops are {pixels.shape[1]}×{pixels.shape[2]}; the CNN needs at least "
                             f"{MIN_CROP_SIDE}×{MIN_CROP_SIDE} pixels")
    if not np.all(np.isfinite(pixels)):
        raise DelicaiteError("crops hold NaN or infinite pixels; check the image and its preprocessing")
    return np.ascontiguousarray(pixels)


def check_labels(y, n: int) -> np.ndarray:
    """PD labels as a 0/1 float32 array of length n, both classes present; DelicaiteError otherwise."""
    labels = np.asarray(y, dtype=np.float64).reshape(-1)
    if labels.shape != (n,):
        raise DelicaiteError(f"got {labels.size} labels for {n} crops; give one 0/1 label per crop")
    if not np.all(np.isin(labels, (0.0, 1.0))):
        raise DelicaiteError("labels must be 0 (no PD) or 1 (PD), one per crop")
    if labels.min() == labels.max():
        raise DelicaiteError(f"all {n} labels are {int(labels[0])}; training needs crops of both PD and non-PD patients")
    return labels.astype(np.float32)


def _balanced_loss(labels: np.ndarray) -> nn.BCEWithLogitsLoss:
    # pos_weight = negatives / positives gives both classes the same total weight.
    positives = float(labels.sum())
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(labels) - positives) / positives))


def _validate(network: ResNet, size: tuple[int, int], validation) -> tuple[float, float]:
    pixels, labels = validation
    logits, _ = PhaseCNN(network, size).logits_and_features(pixels)
    loss = _balanced_loss(labels)(torch.from_numpy(logits).float(), torch.from_numpy(labels)).item()
    return float(loss), float(roc_auc_score(labels, logits))


def train_phase_cnn(crops, y, *, epochs: int = 30, batch_size: int = 16, learning_rate: float = 1e-3,
                    weight_decay: float = 1e-4, seed: int = 0, augment: bool = True, validation=None,
                    phase: str | None = None, progress: Callable[[EpochRecord], None] | None = None) -> PhaseCNN:
    """Train a ResNet-18 on crops (n, H, W) with 0/1 PD labels y (n,), Adam and a class-balanced BCE loss.

    With ``augment`` each crop gets the study's random flips and ±30° rotation every epoch. Same seed,
    same data, same CPU thread count: same network. ``validation`` = (crops, y) is scored after each
    epoch and the weights of the epoch with the highest validation AUC (then lowest loss) are kept. ``progress`` is called
    with an EpochRecord after each epoch."""
    pixels = check_crops(crops)
    labels = check_labels(y, len(pixels))
    if epochs < 1 or batch_size < 2:
        raise DelicaiteError(f"epochs must be ≥ 1 and batch_size ≥ 2 (batch norm), got {epochs} and {batch_size}")
    size = (int(pixels.shape[1]), int(pixels.shape[2]))
    if validation is not None:  # refuse a bad validation set before the first epoch, not after it
        validation = (check_crops(validation[0], size), check_labels(validation[1], len(validation[0])))
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        network = build_resnet18()
    loss_fn = _balanced_loss(labels)
    optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate, weight_decay=weight_decay)
    order_rng = np.random.default_rng(seed)
    augmentation = training_augmentation(seed) if augment else None
    history: list[dict] = []
    # The kept epoch: highest validation AUC, then lowest loss. Ranking is what the features and the
    # stacking (which recalibrates) use; after few epochs batch-norm statistics are unsettled and the
    # loss punished well-ranked but over-confident epochs (AUC 0.99 at loss 2.6 against 0.14 at 0.9).
    best_key, best_state, best_epoch = (np.inf, np.inf), None, None
    for epoch in range(1, epochs + 1):
        network.train()
        order = order_rng.permutation(len(pixels))
        if len(order) % batch_size == 1:
            order = order[:-1]  # batch norm cannot train on a batch of one
        total = 0.0
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            if augmentation is None:
                batch = torch.from_numpy(pixels[index, None])
            else:
                batch = torch.stack([augmentation(pixels[i][None]) for i in index])
            optimiser.zero_grad()
            loss = loss_fn(network(batch)[:, 0], torch.from_numpy(labels[index]))
            loss.backward()
            optimiser.step()
            total += loss.item() * len(index)
        record = EpochRecord(epoch, epochs, total / len(order))
        if validation is not None:
            record.validation_loss, record.validation_auc = _validate(network, size, validation)
            auc = record.validation_auc
            key = (-auc if auc is not None and np.isfinite(auc) else 0.0, record.validation_loss)
            if key < best_key:
                best_key, best_state, best_epoch = key, copy.deepcopy(network.state_dict()), epoch
        history.append(vars(record).copy())
        if progress is not None:
            progress(record)
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    settings = {
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "weight_decay": weight_decay,
        "seed": seed, "augment": augment, "optimiser": "Adam", "loss": "BCE, pos_weight = negatives / positives",
        "n_crops": len(pixels), "n_positive": int(labels.sum()), "validation": validation is not None,
        "kept_epoch": best_epoch, "kept_by": None if best_state is None else "validation AUC, then loss",
    }
    return PhaseCNN(network, size, phase, settings, history)


def case_cnn_features(arrays: Mapping[str, np.ndarray], cnns: Mapping[str, PhaseCNN], stacking=None) -> dict[str, float]:
    """One case's deep CNN columns: per phase the mean over its slices of the PD probability
    (``deep_cnn_ap_prob``) and of the 512 pooled features (``deep_cnn_ap_f000`` …); with a fitted
    PhaseStacking also their combination ``deep_cnn_stacked_prob``. Crops are resized to the size
    each CNN was trained on."""
    columns: dict[str, float] = {}
    for phase, cnn in cnns.items():
        if cnn.phase is not None and cnn.phase != phase:
            raise DelicaiteError(f"the CNN given for {phase} was trained on {cnn.phase}; pass {{'AP': ap_cnn, 'VP': vp_cnn}}")
        if phase not in arrays:
            raise DelicaiteError(f"no {phase} crops for this case (got {', '.join(arrays) or 'none'}); run preprocess_case")
        logits, features = cnn.logits_and_features(resize_crops(arrays[phase], cnn.input_size))
        prefix = f"deep_cnn_{phase.lower()}"
        columns[f"{prefix}_prob"] = float(np.mean(1.0 / (1.0 + np.exp(-logits))))
        columns.update({f"{prefix}_f{k:03d}": float(v) for k, v in enumerate(features.mean(axis=0))})
    if stacking is not None:
        columns["deep_cnn_stacked_prob"] = float(stacking.predict_proba(columns["deep_cnn_ap_prob"],
                                                                        columns["deep_cnn_vp_prob"])[0])
    return columns


CNN_FOLDERS = {"AP": "cnn_ap", "VP": "cnn_vp"}  # a CNN folder (`delicaite deep train-cnn`): one per phase
STACKING_FOLDER = "stacking"                    # + the AP/VP stacking


def load_phase_cnns(directory) -> tuple[dict[str, PhaseCNN], object]:
    """({"AP": cnn, "VP": cnn}, PhaseStacking) of a folder written by `delicaite deep train-cnn`."""
    from .stacking import load_stacking

    directory = Path(directory)
    if not directory.is_dir():
        raise DelicaiteError(f"CNN folder not found: {directory} (write one with `delicaite deep train-cnn`)")
    cnns = {phase: load_phase_cnn(directory / folder) for phase, folder in CNN_FOLDERS.items()}
    return cnns, load_stacking(directory / STACKING_FOLDER)


def save_phase_cnn(cnn: PhaseCNN, directory, note: str | None = None) -> Path:
    """Write ``directory``/weights.npz and model.json; returns the model.json path."""
    arrays = {name: tensor.detach().cpu().numpy() for name, tensor in cnn.network.state_dict().items()}
    meta = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "library_versions": {"delicaite": DELICAITE_VERSION, "torch": torch.__version__, "monai": monai.__version__,
                             "numpy": np.__version__},
        "phase": cnn.phase,
        "architecture": ARCHITECTURE,
        "input_size": list(cnn.input_size),
        "training_settings": cnn.settings,
        "training_history": cnn.history,
    }
    if note is not None:
        meta["note"] = str(note)
    write_artifact(directory, arrays, meta, FORMAT_NAME, FORMAT_VERSION)
    return Path(directory) / METADATA_FILE


def load_phase_cnn(path) -> PhaseCNN:
    """Load a CNN from its directory or model.json; both checksums are verified before any use."""
    arrays, meta, meta_path = read_artifact(path, FORMAT_NAME, FORMAT_VERSION)
    try:
        if meta["architecture"] != ARCHITECTURE:
            raise ModelFileError(f"model file {meta_path} describes another network ({meta['architecture'].get('name')}); "
                                 "this library builds ResNet-18 as in ARCHITECTURE")
        network = build_resnet18()
        state = {}
        for name, reference in network.state_dict().items():
            weights = arrays[name]
            if weights.shape != tuple(reference.shape):
                raise ModelFileError(f"model file weights {name} have shape {weights.shape}, expected {tuple(reference.shape)}")
            state[name] = torch.as_tensor(weights, dtype=reference.dtype)
        network.load_state_dict(state)
        height, width = (int(v) for v in meta["input_size"])
        cnn = PhaseCNN(network.eval(), (height, width), meta["phase"], meta["training_settings"], meta["training_history"])
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a hand-made model.json
        raise ModelFileError(f"model file {meta_path} lacks or mistypes an entry ({exc}); re-export the model") from None
    return cnn
