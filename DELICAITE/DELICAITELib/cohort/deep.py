"""Deep-feature work on a cohort, from the crops `delicaite cohort features --save-crops` kept.

- ``pretrain_cohort_encoder``: self-supervised (DINO) pretraining of a small ViT on the training
  centre's crops, so a site builds its encoder offline (features/deep/pretrain.py).
- ``cohort_block_report``: which transformer block separates PD from disease control best, scored on
  the training centre's patients only (block choice is model choice; features/deep/block_report.py).
- ``train_cohort_cnns``: the supervised CNN per phase on the training centre, early stopping and the
  AP/VP stacking on a held-out validation share of it, Grad-CAM pictures of validation patients.

Test patients (internal and external) are never looked at: the same centre split as `cohort train`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__ as DELICAITE_VERSION
from ..errors import DelicaiteError
from ..preprocessing import PHASES, resize_crops
from ..stats.classification import auc_or_none
from ..storage import write_json_atomically
from .design import design_frame
from .features.crops import patients_with_crops, read_cohort_crops
from .folder import read_cohort
from .splits import TRAINING, recorded_split, stratified_share

GRADCAM_EXAMPLES = 3  # validation patients drawn with Grad-CAM, named by their order only (no identifiers)


def training_patients(cohort_dir, features_dir, seed: int = 0, need_pd: bool = True) -> pd.DataFrame:
    """patient_id, therapy and pd of the training centre's patients that have crops (and, with need_pd, a
    known PD)."""
    frame = design_frame(read_cohort(cohort_dir, check_image_paths=False))
    splits, _ = recorded_split(frame, features_dir, seed=seed)
    rows = frame[(splits["set"] == TRAINING).to_numpy()]
    if need_pd:
        rows = rows[rows["pd"].notna()]
    rows = rows[rows["patient_id"].isin(patients_with_crops(features_dir))].reset_index(drop=True)
    if rows.empty:
        raise DelicaiteError(f"no training-centre patient{' with a known PD' if need_pd else ''} has crops under "
                             f"{features_dir}: run `delicaite cohort features --save-crops` first")
    return rows[["patient_id", "therapy", "pd"]]


def _write_json(path: Path, record: dict) -> None:
    write_json_atomically(path, record, indent=2)


def _stamp() -> dict:
    return {"created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "delicaite": DELICAITE_VERSION}


# ------------------------------------------------------------------------------------ pretraining
def pretrain_cohort_encoder(cohort_dir, features_dir, out_dir, *, seed: int = 0, progress=None, **options) -> dict:
    """DINO-pretrain a ViT on every crop (both phases, all slices) of the training centre's patients,
    PD known or not (the labels are never used); write the encoder to ``out_dir`` with pretraining.json
    (losses per epoch, settings) and a loss curve. ``options`` go to pretrain_vit."""
    from ..features.deep.encoder import save_encoder
    from ..features.deep.pretrain import pretrain_vit

    patients = training_patients(cohort_dir, features_dir, seed, need_pd=False)
    crops = read_cohort_crops(features_dir, patients["patient_id"])
    images = np.concatenate([case[phase] for case in crops.values() for phase in PHASES])
    result = pretrain_vit(images, seed=seed, progress=progress, **options)
    out = Path(out_dir)
    save_encoder(result.encoder, out, note=f"DINO-pretrained on {len(images)} crops of {len(crops)} training-centre "
                                          "patients by `delicaite deep pretrain`")
    record = {**_stamp(), "n_patients": len(crops), "n_crops": int(len(images)), "losses": result.losses,
              "settings": result.settings}
    _write_json(out / "pretraining.json", record)
    _loss_curve(out / "pretraining_loss.png", result.losses)
    return record


def _loss_curve(path: Path, losses: list[float]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2), dpi=110)
    ax = fig.add_subplot()
    ax.plot(range(1, len(losses) + 1), losses, marker="o", markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("DINO loss (mean over the epoch)")
    ax.set_title("Self-supervised pretraining")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


# ----------------------------------------------------------------------------------- block report
def cohort_block_report(encoder_path, cohort_dir, features_dir, out_dir, *, seed: int = 0) -> dict:
    """Every block's case features (CLS and mean patch token of both phases, mean over the slices)
    scored against PD on the training centre's patients; files as block_report writes them."""
    from ..features.deep.block_report import block_report
    from ..features.deep.encoder import load_encoder

    encoder = load_encoder(encoder_path)
    patients = training_patients(cohort_dir, features_dir, seed)
    y = patients["pd"].to_numpy(int)
    if len(set(y)) < 2:
        raise DelicaiteError("the training centre's patients with crops all have the same PD; the block report "
                             "needs both outcomes")
    crops = read_cohort_crops(features_dir, patients["patient_id"])
    by_block = np.stack([
        np.concatenate([encoder.slice_features_all_blocks(crops[pid][phase]).mean(axis=1) for phase in PHASES], axis=1)
        for pid in patients["patient_id"]], axis=1)  # (blocks, patients, 2 phases × 2 × D)
    report = block_report(by_block, y, seed=seed, out_dir=out_dir, class_names=("disease control", "PD"))
    report.update({**_stamp(), "encoder": str(encoder_path), "patients": "training centre, PD known"})
    _write_json(Path(out_dir) / "block_report.json", report)
    return report


# ---------------------------------------------------------------------------------- CNN per phase
def train_cohort_cnns(cohort_dir, features_dir, out_dir, *, epochs: int = 30, input_size: int | None = None,
                      validation_share: float = 0.2, seed: int = 0,
                      progress: Callable[[str], None] | None = None) -> dict:
    """A CNN per phase on the training centre (every slice carries its patient's PD), the weights of the
    epoch with the highest AUC on a validation share of the patients, then the AP/VP stacking fitted
    on those validation patients' probabilities (the CNNs never trained on them).

    ``input_size`` resizes the 224 px crops (smaller trains faster); the CNN files record it.
    Writes cnn_ap/, cnn_vp/, stacking/ (checksummed files), gradcam/*.png and cnn_training.json."""
    from ..features.deep.cnn import CNN_FOLDERS, STACKING_FOLDER, save_phase_cnn, train_phase_cnn
    from ..features.deep.gradcam import grad_cam, save_gradcam_png
    from ..features.deep.stacking import PhaseStacking, save_stacking

    say = progress or (lambda message: None)
    patients = training_patients(cohort_dir, features_dir, seed)
    y = patients["pd"].to_numpy(int)
    validation, rule = stratified_share(patients["therapy"].to_numpy(), y, validation_share, seed + 1)
    crops = read_cohort_crops(features_dir, patients["patient_id"])
    ids = patients["patient_id"].to_numpy()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def stack(rows: np.ndarray, phase: str) -> tuple[np.ndarray, np.ndarray]:
        images = [resize_crops(crops[pid][phase], input_size) for pid in ids[rows]]
        return np.concatenate(images), np.repeat(y[rows], [len(i) for i in images])

    cnns, validation_p, record = {}, {}, {}
    for phase in PHASES:
        say(f"{phase} CNN: {int((~validation).sum())} training and {int(validation.sum())} validation patients")
        train_x, train_y = stack(~validation, phase)
        val_x, val_y = stack(validation, phase)
        cnn = train_phase_cnn(train_x, train_y, epochs=epochs, seed=seed, validation=(val_x, val_y), phase=phase,
                              progress=lambda r, p=phase: say(f"{p} epoch {r.epoch}/{r.epochs}: loss {r.loss:.3f}, "
                                                              f"validation AUC {r.validation_auc:.3f}"))
        save_phase_cnn(cnn, out / CNN_FOLDERS[phase], note="trained by `delicaite deep train-cnn`")
        cnns[phase] = cnn
        validation_p[phase] = np.array([cnn.predict_proba(resize_crops(crops[pid][phase], input_size)).mean()
                                        for pid in ids[validation]])
        record[phase] = {"kept_epoch": cnn.settings.get("kept_epoch"), "validation_auc": auc_or_none(y[validation], validation_p[phase])}
    stacking = PhaseStacking().fit(validation_p["AP"], validation_p["VP"], y[validation])
    save_stacking(stacking, out / STACKING_FOLDER, note="fitted on the validation patients' CNN probabilities")
    stacked = stacking.predict_proba(validation_p["AP"], validation_p["VP"])
    pictures = []
    for k, pid in enumerate(ids[validation][:GRADCAM_EXAMPLES], start=1):
        for phase in PHASES:
            crop = resize_crops(crops[pid][phase], input_size)[0]  # the largest tumour slice
            path = out / "gradcam" / f"validation_patient_{k}_{phase.lower()}.png"
            path.parent.mkdir(exist_ok=True)
            save_gradcam_png(crop, grad_cam(cnns[phase], crop), path, title=f"validation patient {k}, {phase}")
            pictures.append(str(path.relative_to(out)))
    summary = {**_stamp(), "n_training_patients": int((~validation).sum()), "n_validation_patients": int(validation.sum()),
               "validation_rule": rule, "epochs": epochs, "input_size": input_size or 224, "seed": seed,
               "phases": record, "stacking": stacking.to_dict(), "stacked_validation_auc": auc_or_none(y[validation], stacked),
               "gradcam": pictures,
               "note": "validation AUCs are in-sample for the stacking (fitted on the same patients); judge the CNNs "
                       "on the test centres"}
    _write_json(out / "cnn_training.json", summary)
    return summary
