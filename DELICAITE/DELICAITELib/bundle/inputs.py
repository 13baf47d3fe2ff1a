"""From a patient's raw inputs to the interaction model's X: the input half of a model bundle.

Raw inputs are what a case door or a cohort design frame holds: the encoded clinical covariates
(clinical/encoding.py) and the image feature columns (radiomics ``AP_…``/``VP_…``, deep ``deep_…``).
Fitted on the training patients only, the preparation then does the same to every patient:

1. deep columns → their first principal components (features/deep/reduction.py), when the bundle has them;
2. the model's columns, in the order it was trained on;
3. a missing value → the training value of that column (the median for bundles made by this library,
   the scaler mean for interaction-model files written before bundles existed), recorded per patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DelicaiteError
from ..features.deep.reduction import DeepFeatureReduction

TRAINING_MEDIAN = "training median"
TRAINING_MEAN = "training mean (the model's scaler centre; model file made before model bundles)"


@dataclass
class InputPreparation:
    """``raw_columns``: what a patient must provide (missing values allowed); ``model_columns``: X's
    columns in order; ``imputation``: the value per model column that stands in for a missing one."""

    raw_columns: list[str]
    model_columns: list[str]
    imputation: np.ndarray
    imputation_rule: str = TRAINING_MEDIAN
    reduction: DeepFeatureReduction | None = None

    def __post_init__(self):
        self.imputation = np.asarray(self.imputation, dtype=float)
        if len(self.imputation) != len(self.model_columns):
            raise DelicaiteError(f"{len(self.imputation)} imputation values for {len(self.model_columns)} model columns")
        if not np.all(np.isfinite(self.imputation)):
            raise DelicaiteError("an imputation value is not a finite number")

    @classmethod
    def fit(cls, train: pd.DataFrame, clinical: list[str], image: list[str], deep: list[str], *,
            deep_components: int = 0, seed: int = 0) -> InputPreparation:
        """Fit on the training rows: the PCA of the ``deep`` columns (``deep_components`` > 0; else the raw
        deep columns go in) and the medians of every model column (0 for a column with no value at all)."""
        reduction, deep_inputs = None, list(deep)
        if deep and deep_components:
            reduction = DeepFeatureReduction.fit(train, list(deep), deep_components, seed=seed)
            train = reduction.with_components(train)
            deep_inputs = reduction.names
        model_columns = [*clinical, *image, *deep_inputs]
        medians = train[model_columns].astype(float).median().fillna(0.0).to_numpy(float)
        return cls([*clinical, *image, *deep], model_columns, medians, TRAINING_MEDIAN, reduction)

    def missing_columns(self, frame: pd.DataFrame) -> list[str]:
        return [c for c in self.raw_columns if c not in frame.columns]

    def prepare(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(X, imputed): X holds the model columns of every row of ``frame``, missing values filled;
        ``imputed`` (bool, same shape) marks the cells that were filled."""
        missing = self.missing_columns(frame)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DelicaiteError(f"the model needs input(s) this patient table does not have: {shown}")
        if self.reduction is not None:
            frame = self.reduction.with_components(frame)
        raw = frame[self.model_columns].apply(pd.to_numeric, errors="coerce").astype(float)
        imputed = raw.isna()
        x = raw.fillna(pd.Series(self.imputation, index=self.model_columns))
        return x, imputed

    def describe(self) -> dict:
        return {"raw_columns": len(self.raw_columns), "model_columns": list(self.model_columns),
                "imputation_rule": self.imputation_rule,
                "deep_reduction": None if self.reduction is None else self.reduction.summary()}
