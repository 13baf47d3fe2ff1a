"""A model folder of `delicaite cohort train` (or `delicaite train`), loaded for evaluation: the model
bundle, the comparators with their thresholds, the splits and the training summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..bundle import ModelBundle, load_bundle
from ..errors import DelicaiteError, ModelFileError
from .comparators.files import load_comparator
from .comparators.models import Comparator

DELICAITE = "delicaite"
SUMMARY_FILE, SPLITS_FILE, COMPARATORS_DIR = "training.json", "splits.csv", "comparators"


@dataclass
class TrainedModels:
    """What a training run wrote: splits, DELICAITE (the bundle), the comparators and their thresholds."""

    directory: Path
    splits: pd.DataFrame
    summary: dict
    bundle: ModelBundle
    comparators: dict[str, Comparator]
    thresholds: dict[str, float]

    @property
    def names(self) -> list[str]:
        return [DELICAITE, *self.comparators]

    def predict_pd(self, name: str, frame: pd.DataFrame) -> np.ndarray:
        """P(PD | x, received therapy) of model `name` for each row of a design frame."""
        if name == DELICAITE:
            return self.bundle.predict_pd(frame)
        if name not in self.comparators:
            raise DelicaiteError(f"no model named {name!r}; this model folder holds {', '.join(self.names)}")
        return self.comparators[name].predict_pd(frame)


def load_trained(model_dir) -> TrainedModels:
    """Load MODEL_DIR written by a training run; every model file's checksum is verified."""
    d = Path(model_dir)
    for name in (SUMMARY_FILE, SPLITS_FILE):
        if not (d / name).is_file():
            raise ModelFileError(f"{d / name} is missing; is {d} a folder written by `delicaite cohort train`?")
    summary = json.loads((d / SUMMARY_FILE).read_text(encoding="utf-8"))
    splits = pd.read_csv(d / SPLITS_FILE, dtype={"patient_id": str, "centre": str})
    bundle = load_bundle(d)
    comparators = {name: load_comparator(d / COMPARATORS_DIR / name) for name in summary["names"] if name != DELICAITE}
    threshold = bundle.threshold if bundle.threshold is not None else summary.get("thresholds", {}).get(DELICAITE)
    if threshold is None:
        raise ModelFileError(f"{d}: no threshold for DELICAITE in the bundle or training.json")
    thresholds = {DELICAITE: float(threshold), **{n: c.threshold for n, c in comparators.items()}}
    return TrainedModels(d, splits, summary, bundle, comparators, thresholds)
