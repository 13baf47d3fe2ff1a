"""Training the liver/tumour network: random patches, augmentation, DiceCE loss, checkpoints, resume.

An "epoch" is a fixed number of iterations (``iterations_per_epoch``), not a pass over the volumes:
with 4 or 131 volumes alike, every iteration draws ``batch_size`` patches, each from a volume chosen
at random and centred on background, liver or tumour in the ratio 1:2:1 (MONAI
RandCropByLabelClassesd; a class absent from a volume is skipped). After each epoch:
validation Dice per volume (when validation volumes are given), then out_dir/checkpoint/ (weights,
AdamW state as plain arrays, epoch, history, seed) and, when the epoch is the best so far,
out_dir/best/ (the same format as the shipped weights). Every epoch reseeds from (seed, epoch), so
a resumed run draws the same patches as an uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from monai.losses import DiceCELoss, DiceLoss
from monai.transforms import (
    ClassesToIndicesd,
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandCropByLabelClassesd,
    RandGaussianNoised,
    RandScaleIntensityd,
    RandShiftIntensityd,
    SpatialPadd,
)
from torch import nn
from tqdm.auto import tqdm

from ..errors import DelicaiteError, ModelFileError
from ..storage import read_artifact, write_artifact
from .augment import RandContrastLumensd
from .datasets import TrainingPair, load_pair
from .device import resolve_device
from .inference import predict_probabilities, probabilities_to_labels
from .metrics import mask_dice
from .network import SegmentationConfig, build_network
from .preprocess import resample_label, to_working_arrays
from .weights import load_state_arrays, save_segmentation_weights, state_arrays

CHECKPOINT_FORMAT = "delicaite-liver-segmentation-checkpoint"
CHECKPOINT_VERSION = 1
CROP_RATIOS = (1, 2, 1)  # background : liver : tumour patch centres
NEIGHBOUR_CENTRE = 3  # a fourth kind of patch centre: a labelled neighbouring organ (background for the loss)
MAX_INDICES_PER_CLASS = 200_000  # enough candidate centres; keeps 131 LiTS volumes' indices small


@dataclass
class _Volume:
    """One training/validation volume on the working grid, (1, z, y, x) arrays."""

    name: str
    sample: dict  # {"image", "label", "centres_cls_indices"} ready for the random crop
    has_tumour: bool


def train_segmentation(train_volumes, out_dir, *, val_volumes=None, epochs: int, seed: int = 0,
                       device: str = "auto", resume: bool = False, progress: bool = True,
                       config: SegmentationConfig | None = None, iterations_per_epoch: int = 50,
                       batch_size: int = 2, learning_rate: float = 2e-3, lumen_probability: float = 0.0,
                       neighbour_ratio: float = 0.0) -> list[dict]:
    """Train a network from scratch (or resume) and return the history, one dict per epoch.

    ``train_volumes`` / ``val_volumes``: TrainingPair objects, or (name, image, label) / (image,
    label) tuples of SimpleITK images with the label on the image's grid, or (name, image, label,
    neighbours) with a 0/1 mask of labelled neighbouring organs (or None). ``neighbour_ratio``: patch
    centres on those organs, against 1 : 2 : 1 on background, liver and tumour (0: none). Writes
    ``out_dir``/checkpoint/ every epoch and ``out_dir``/best/ (highest mean validation Dice; the
    latest epoch when there is no validation). ``resume`` continues from out_dir/checkpoint/ with
    its optimizer state, epoch, history and seed (the given ``seed`` and ``config`` must agree).
    """
    out_dir = Path(out_dir)
    torch_device = resolve_device(device)
    if epochs < 1 or iterations_per_epoch < 1 or batch_size < 1:
        raise DelicaiteError("epochs, iterations_per_epoch and batch_size must be at least 1")

    state = _read_checkpoint(out_dir, config, seed) if resume else None
    config = state["config"] if state else (config or SegmentationConfig())
    torch.manual_seed(seed)  # network initialisation
    network = build_network(config).to(torch_device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-5)
    history, start_epoch = [], 1
    if state:
        load_state_arrays(network, state["network"], out_dir / "checkpoint")
        optimizer.load_state_dict(state["optimizer"])
        history, start_epoch = state["history"], state["epoch"] + 1
        if start_epoch > epochs:
            return history  # already trained that far: nothing to read or run

    train = _prepare(train_volumes, config, "training", neighbour_ratio > 0)
    if not train:
        raise DelicaiteError("no training volumes given")
    val = _prepare(val_volumes or [], config, "validation")
    augment = _augmentation(config, lumen_probability, neighbour_ratio)
    loss_function = LiverRegionDiceCELoss()
    scaler = torch.amp.GradScaler("cuda", enabled=torch_device.type == "cuda")
    total_iterations = epochs * iterations_per_epoch

    for epoch in range(start_epoch, epochs + 1):
        started = time.perf_counter()
        rng = np.random.default_rng([seed, epoch])
        augment.set_random_state(seed=int(rng.integers(2**31)))
        network.train()
        losses = []
        bar = tqdm(range(iterations_per_epoch), desc=f"epoch {epoch}/{epochs}", disable=not progress,
                   leave=False, unit="it")
        for step in bar:
            iteration = (epoch - 1) * iterations_per_epoch + step
            lr = learning_rate * (1.0 - iteration / total_iterations) ** 0.9  # poly decay, a function of the step
            for group in optimizer.param_groups:
                group["lr"] = lr
            images, labels = _batch(train, augment, rng, batch_size, torch_device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(torch_device.type, dtype=torch.float16, enabled=torch_device.type == "cuda"):
                loss = loss_function(network(images), labels)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
        bar.close()
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "lr": lr,
                  "seconds": round(time.perf_counter() - started, 2)}
        if val:
            record["val_dice"] = _validate(network, val, config, torch_device)
            record["val_mean_dice"] = _mean_dice(record["val_dice"])
        history.append(record)
        if progress:
            tqdm.write(_describe(record, epochs))
        if _is_best(history):
            save_segmentation_weights(network, config, out_dir / "best", extra={"training": _summary(
                train, val, history, seed, iterations_per_epoch, batch_size, learning_rate, lumen_probability,
                neighbour_ratio)})
        _write_checkpoint(out_dir, network, optimizer, config, history, seed,
                          {"iterations_per_epoch": iterations_per_epoch, "batch_size": batch_size,
                           "learning_rate": learning_rate, "epochs": epochs})
    return history


class LiverRegionDiceCELoss(nn.Module):
    """DiceCE over the three classes plus a Dice term on the whole liver (label ≥ 1 = 1 − P(background)).

    The contract's "liver" includes tumour; the extra term stops the network trading a tumour it
    cannot place for background, which costs liver Dice on livers full of tumours.
    """

    def __init__(self):
        super().__init__()
        self.classes = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
        self.region = DiceLoss(batch=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        liver = 1.0 - torch.softmax(logits.float(), dim=1)[:, :1]
        return self.classes(logits, target) + self.region(liver, (target >= 1).float())


# --- data ----------------------------------------------------------------------------------------

def _prepare(volumes, config: SegmentationConfig, what: str, neighbours: bool = False) -> list[_Volume]:
    """Resample each volume to the working grid once; pairs are read one at a time and dropped.

    Patch centres are drawn per class from "centres": the label, plus :data:`NEIGHBOUR_CENTRE` on the
    labelled neighbouring organs when ``neighbours``.
    """
    # replicate the border like inference does (sliding window, PAD_MODE): a liver cut by a partial
    # scan or a tight crop continues into the padding instead of ending at a wall of air
    pad = SpatialPadd(("image", "label", "centres"), spatial_size=config.patch_zyx, mode="edge")
    indices = ClassesToIndicesd("centres", num_classes=config.num_classes + int(neighbours),
                                max_samples_per_class=MAX_INDICES_PER_CLASS)
    prepared = []
    for k, item in enumerate(volumes):
        name, image, label, organs = _unpack(item, k, what)
        values, labels, grid = to_working_arrays(image, label, config)
        centres = labels.copy()
        if neighbours and organs is not None:
            centres[(sitk.GetArrayViewFromImage(resample_label(organs, grid)) > 0) & (labels == 0)] = NEIGHBOUR_CENTRE
        del image, label, organs
        sample = indices(pad({"image": values[None], "label": labels[None], "centres": centres[None]}))
        del sample["centres"]
        prepared.append(_Volume(name, sample, bool(np.any(labels == 2))))
    return prepared


def _unpack(item, k: int, what: str) -> tuple[str, sitk.Image, sitk.Image, sitk.Image | None]:
    if isinstance(item, TrainingPair):
        return (item.name, *load_pair(item), None)
    if isinstance(item, tuple) and len(item) == 4:
        return item
    if isinstance(item, tuple) and len(item) == 3:
        return (*item, None)
    if isinstance(item, tuple) and len(item) == 2:
        return (f"{what}-{k}", *item, None)
    raise DelicaiteError(
        f"{what} volume {k} is a {type(item).__name__}; give TrainingPair objects or (name, image, label) tuples"
    )


def _augmentation(config: SegmentationConfig, lumen_probability: float = 0.0, neighbour_ratio: float = 0.0) -> Compose:
    """Random crop + small geometric and intensity changes (+ painted contrast lumens, augment.py).

    No flips: the liver sits on the patient's right, and a left-right flip would teach the network
    that a spleen-shaped organ on the left can be liver.
    """
    keys = ("image", "label")
    return Compose([
        RandCropByLabelClassesd(keys, "label", spatial_size=config.patch_zyx,
                                ratios=list(CROP_RATIOS) + ([neighbour_ratio] if neighbour_ratio > 0 else []),
                                num_classes=config.num_classes + int(neighbour_ratio > 0), num_samples=1,
                                indices_key="centres_cls_indices", warn=False),
        # rotation mostly in the axial plane (axis 0 of the (z, y, x) patch), ±15 %: body size varies
        RandAffined(keys, prob=0.5, rotate_range=(0.26, 0.08, 0.08), scale_range=(0.15, 0.15, 0.15),
                    mode=("bilinear", "nearest"), padding_mode="border"),
        # contrast phase and scanner: the liver's median is 46 HU in one training CT, 119 in another
        RandScaleIntensityd("image", factors=0.15, prob=0.5),
        RandShiftIntensityd("image", offsets=0.1, prob=0.5),
        RandAdjustContrastd("image", gamma=(0.8, 1.25), prob=0.3),
        RandGaussianNoised("image", prob=0.2, std=0.02),
        *([RandContrastLumensd(prob=lumen_probability)] if lumen_probability > 0 else []),
    ])


def _batch(volumes: list[_Volume], augment: Compose, rng: np.random.Generator, batch_size: int, device):
    images, labels = [], []
    for k in rng.integers(len(volumes), size=batch_size):
        sample = augment(volumes[int(k)].sample)[0]  # the crop returns a list of one sample
        images.append(torch.as_tensor(sample["image"]).float())
        labels.append(torch.as_tensor(sample["label"]).long())
    return torch.stack(images).to(device), torch.stack(labels).to(device)


# --- validation ----------------------------------------------------------------------------------

def _validate(network, volumes: list[_Volume], config, device) -> dict[str, dict[str, float]]:
    """Dice per volume on the working grid: liver (label ≥ 1) and tumour where the label has some."""
    scores = {}
    for volume in volumes:
        probabilities = predict_probabilities(network, volume.sample["image"][0], config, device)
        predicted = probabilities_to_labels(probabilities[1], probabilities[2])
        truth = np.asarray(volume.sample["label"][0])
        scores[volume.name] = {"liver": round(mask_dice(predicted >= 1, truth >= 1), 4)}
        if volume.has_tumour:
            scores[volume.name]["tumour"] = round(mask_dice(predicted == 2, truth == 2), 4)
    return scores


def _mean_dice(scores: dict) -> float:
    return float(np.mean([value for volume in scores.values() for value in volume.values()]))


def _is_best(history: list[dict]) -> bool:
    if "val_mean_dice" not in history[-1]:
        return True  # without validation the latest weights are kept
    return history[-1]["val_mean_dice"] >= max(h.get("val_mean_dice", -1.0) for h in history)


def _describe(record: dict, epochs: int) -> str:
    text = f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f} ({record['seconds']:.0f} s)"
    if "val_dice" in record:
        text += f", validation Dice {record['val_mean_dice']:.3f} " + str(record["val_dice"])
    return text


def _summary(train, val, history, seed, iterations_per_epoch, batch_size, learning_rate,
             lumen_probability: float = 0.0, neighbour_ratio: float = 0.0) -> dict:
    return {"train_volumes": [v.name for v in train], "val_volumes": [v.name for v in val],
            "epochs": history[-1]["epoch"], "iterations_per_epoch": iterations_per_epoch,
            "batch_size": batch_size, "learning_rate": learning_rate, "lumen_probability": lumen_probability,
            "neighbour_ratio": neighbour_ratio, "seed": seed, "history": history}


# --- checkpoint ----------------------------------------------------------------------------------

def _write_checkpoint(out_dir: Path, network, optimizer, config, history, seed, settings) -> None:
    arrays = {f"net.{name}": value for name, value in state_arrays(network).items()}
    optimizer_state = optimizer.state_dict()
    for index, values in optimizer_state["state"].items():
        for key, tensor in values.items():
            arrays[f"opt.{index}.{key}"] = torch.as_tensor(tensor).detach().cpu().numpy()
    meta = {"config": config.to_dict(), "epoch": history[-1]["epoch"], "history": history, "seed": seed,
            "settings": settings, "optimizer_param_groups": optimizer_state["param_groups"]}
    write_artifact(out_dir / "checkpoint", arrays, meta, CHECKPOINT_FORMAT, CHECKPOINT_VERSION)


def _read_checkpoint(out_dir: Path, config: SegmentationConfig | None, seed: int) -> dict:
    path = out_dir / "checkpoint"
    if not path.is_dir():
        raise DelicaiteError(f"nothing to resume: {path} does not exist; train without resume first")
    try:
        arrays, meta, _ = read_artifact(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION)
        stored = SegmentationConfig.from_dict(meta["config"])
    except KeyError as exc:
        raise ModelFileError(f"checkpoint {path} lacks {exc}; start a new training") from None
    if config is not None and config != stored:
        raise DelicaiteError(f"checkpoint {path} was trained with another config; resume without a config or start anew")
    if meta["seed"] != seed:
        raise DelicaiteError(f"checkpoint {path} was trained with seed {meta['seed']}, not {seed}; resume with that seed")
    optimizer_state: dict = {"state": {}, "param_groups": meta["optimizer_param_groups"]}
    for key, value in arrays.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            optimizer_state["state"].setdefault(int(index), {})[name] = torch.from_numpy(value)
    network = {key[len("net."):]: value for key, value in arrays.items() if key.startswith("net.")}
    return {"config": stored, "network": network, "optimizer": optimizer_state,
            "history": meta["history"], "epoch": int(meta["epoch"])}
