"""A model bundle: the interaction model with everything it needs to be served, as one object.

Like a scikit-learn Pipeline, a bundle carries its own input preparation, so every door (`delicaite
case`, `batch`, `cohort evaluate`, the Slicer modules) turns a patient into the model's X the same way:

    feature_spec   which image features a case needs (radiomics settings, deep encoder and CNN);
                   None when the bundle was trained on a features table of unknown making
    inputs         raw columns → deep components → model columns → imputation (inputs.py)
    model          the InteractionModel (its own scaler inside)
    threshold      the Youden threshold of P(PD | received therapy), fixed on the training set

`predictions` runs the ensemble once for a table of patients; `predict_case` gives one patient's
typed Prediction with the drivers of h.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..clinical import encode
from ..errors import DelicaiteError
from ..features.spec import FeatureSpec
from ..recommendation import Driver, InteractionScore, Prediction, Risks
from .inputs import InputPreparation

INTERVAL_LEVEL = 0.90
N_DRIVERS = 5
RESEARCH_NOTE = "research model: not validated for clinical use"


@dataclass
class ModelBundle:
    model: object  # InteractionModel (typed loosely: torch is imported only where a model is built or loaded)
    inputs: InputPreparation
    feature_spec: FeatureSpec | None
    threshold: float | None = None
    note: str = RESEARCH_NOTE
    info: dict = field(default_factory=dict)
    directory: Path | None = None

    @property
    def cutoff(self) -> float:
        return float(self.model.cutoff)

    @property
    def training_h(self) -> np.ndarray:
        """Every training patient's h (the report draws the new patient against them)."""
        return np.asarray(self.model.training_h_, dtype=float)

    def require_feature_spec(self) -> FeatureSpec:
        """The spec a case door computes features with; refused when the bundle does not know it."""
        if self.feature_spec is None:
            raise DelicaiteError(
                "this model was trained on a features table without its feature_spec.json, so a new case's image "
                "features cannot be computed the same way; make the table with `delicaite cohort features` and "
                "train again")
        return self.feature_spec

    # ---------------------------------------------------------------------------------- one patient
    def case_row(self, clinical: Mapping, features: Mapping[str, float]) -> pd.DataFrame:
        """One patient's raw inputs as a one-row table: validated covariates encoded, then the features."""
        row = encode(clinical)
        clash = [c for c in features if c in row.columns]
        if clash:
            raise DelicaiteError(f"feature name(s) {', '.join(clash[:5])} clash with clinical columns")
        return pd.concat([row.reset_index(drop=True), pd.DataFrame([dict(features)], dtype=float)], axis=1)

    def predict_case(self, clinical: Mapping, features: Mapping[str, float]) -> Prediction:
        """Risks, h with its interval, the recommendation and the drivers of one patient (covariates
        already validated; ``features`` as the bundle's spec computes them)."""
        row = self.case_row(clinical, features)
        table = self.predictions(row)
        x, imputed = self.inputs.prepare(row)
        contributions = self.model.explain(x).iloc[0]
        top = contributions.reindex(contributions.abs().sort_values(ascending=False).index)[:N_DRIVERS]
        first = table.iloc[0]
        return Prediction(
            risk=Risks(float(first["p_pd_tace"]), float(first["p_pd_haic"])),
            score=InteractionScore(float(first["h"]), float(first["h_lower"]), float(first["h_upper"]),
                                   INTERVAL_LEVEL, float(first["training_percentile"])),
            cutoff=self.cutoff,
            drivers=tuple(Driver(str(name), float(value)) for name, value in top.items()),
            imputed=tuple(c for c in self.inputs.model_columns if bool(imputed.iloc[0][c])))

    # ---------------------------------------------------------------------------------- many patients
    def predictions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per row of a design frame (or case rows): h, h_lower, h_upper, p_pd_tace, p_pd_haic,
        training_percentile and recommendation, from one pass through the ensemble; with a ``therapy``
        column also p_pd_received, P(PD | x, the therapy received)."""
        x, _ = self.inputs.prepare(frame)
        table = self.model.predict_all(x, alpha=1 - INTERVAL_LEVEL)
        if "therapy" in frame:
            therapy = frame["therapy"].astype(str).to_numpy()
            if not np.isin(therapy, ("TACE", "HAIC")).all():
                raise DelicaiteError("therapy must be 'TACE' or 'HAIC' for every patient")
            table["p_pd_received"] = np.where(therapy == "HAIC", table["p_pd_haic"], table["p_pd_tace"])
        return table

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        """P(PD | x, therapy received) per row of a design frame (column ``therapy``)."""
        if "therapy" not in frame:
            raise DelicaiteError("the patient table has no therapy column")
        return self.predictions(frame)["p_pd_received"].to_numpy(float)

    # ---------------------------------------------------------------------------------- what it is
    def summary(self) -> dict:
        """What a case result says of its model (no path: folders often name people or sites)."""
        meta = getattr(self.model, "metadata_", {}) or {}
        return {"note": self.note, "weights_sha256": self.info.get("bundle_sha256") or meta.get("weights_sha256", ""),
                "n_features": len(self.inputs.model_columns), "training_n": self.model.training_summary_.get("n"),
                "features": "unknown" if self.feature_spec is None else self.feature_spec.describe(),
                "imputation": self.inputs.imputation_rule,
                # provenance: which tool and version trained it, when, on how many patients (no names, no paths)
                "provenance": {key: self.info.get(key) for key in ("trained_by", "made_with", "created_at",
                                                                    "cohort_size", "seed") if self.info.get(key) is not None}}
