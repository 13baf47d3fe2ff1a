"""Principal components of the deep features, fitted on the training patients only.

A ViT-S encoder gives 1,536 columns per case and a CNN 1,026; fed raw to the interaction model they
would swamp the dozen clinical covariates (the network's input group lasso has to fight each one).
So the deep columns are imputed with training medians, standardised and projected on their first
principal components; the interaction model sees a handful of ``deep_pcNN`` columns instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from ...errors import DelicaiteError, ModelFileError
from ...storage import read_artifact, write_artifact

COMPONENT_PREFIX = "deep_pc"  # starts with deep_, so cohort code still counts the components as deep features
DEFAULT_COMPONENTS = 8
FORMAT_NAME, FORMAT_VERSION = "delicaite-deep-reduction", 1


def component_names(n: int) -> list[str]:
    return [f"{COMPONENT_PREFIX}{k + 1:02d}" for k in range(n)]


@dataclass
class DeepFeatureReduction:
    """The fitted projection: raw deep columns → ``deep_pc01 …``; see ``fit``."""

    columns: list[str]
    medians: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (k, len(columns)) in the standardised space
    explained_variance_ratio: np.ndarray
    extra: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str], n_components: int = DEFAULT_COMPONENTS,
            seed: int = 0) -> "DeepFeatureReduction":
        """Fit on the rows of ``frame`` (the training patients only). At most n_rows − 1 components: more
        would describe nothing but those patients."""
        if not columns:
            raise DelicaiteError("no deep feature columns to reduce")
        missing = [c for c in columns if c not in frame]
        if missing:
            raise DelicaiteError(f"the table lacks deep feature column(s) {', '.join(missing[:5])}")
        x = frame[columns].astype(float)
        known = x.notna().any(axis=1)
        if known.sum() < 3:
            raise DelicaiteError(f"only {int(known.sum())} training patients have deep features; at least 3 are needed")
        if int(n_components) < 1:
            raise DelicaiteError(f"the number of deep components must be at least 1, got {n_components}")
        medians = x[known].median().fillna(0.0).to_numpy(float)
        filled = x[known].fillna(pd.Series(medians, index=columns)).to_numpy(float)
        mean, scale = filled.mean(axis=0), filled.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)  # a constant column adds nothing and divides by nothing
        k = min(int(n_components), len(filled) - 1, len(columns))
        pca = PCA(n_components=k, svd_solver="full", random_state=seed).fit((filled - mean) / scale)
        components = _fixed_signs(pca.components_)
        return cls(list(columns), medians, mean, scale, components, pca.explained_variance_ratio_,
                   {"n_training_patients": int(known.sum()), "requested_components": int(n_components)})

    @property
    def names(self) -> list[str]:
        return component_names(len(self.components))

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The components of each row (index of ``frame``); a row without any deep feature gets NaN, so
        the model's own imputation treats it as missing rather than as an average patient."""
        missing = [c for c in self.columns if c not in frame]
        if missing:
            raise DelicaiteError(f"the table lacks {len(missing)} deep feature column(s) the reduction was fitted on: "
                                 f"{', '.join(missing[:5])}")
        x = frame[self.columns].astype(float)
        filled = x.fillna(pd.Series(self.medians, index=self.columns)).to_numpy(float)
        scores = ((filled - self.mean) / self.scale) @ self.components.T
        scores[~x.notna().any(axis=1).to_numpy()] = np.nan
        return pd.DataFrame(scores, index=frame.index, columns=self.names)

    def with_components(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the component columns added (replacing any of the same names)."""
        return pd.concat([frame.drop(columns=self.names, errors="ignore"), self.transform(frame)], axis=1)

    def summary(self) -> dict:
        return {"columns_in": len(self.columns), "components": self.names,
                "explained_variance_ratio": [round(float(v), 6) for v in self.explained_variance_ratio], **self.extra}

    # ------------------------------------------------------------------------------------------ files
    def save(self, directory, note: str | None = None) -> Path:
        arrays = {"medians": self.medians, "mean": self.mean, "scale": self.scale, "components": self.components,
                  "explained_variance_ratio": self.explained_variance_ratio}
        meta = {"columns": self.columns, "note": note, "extra": self.extra}
        write_artifact(directory, arrays, meta, FORMAT_NAME, FORMAT_VERSION)
        return Path(directory)

    @classmethod
    def load(cls, path) -> "DeepFeatureReduction":
        arrays, meta, meta_path = read_artifact(path, FORMAT_NAME, FORMAT_VERSION)
        try:
            reduction = cls(list(meta["columns"]), arrays["medians"], arrays["mean"], arrays["scale"],
                            arrays["components"], arrays["explained_variance_ratio"], dict(meta.get("extra") or {}))
        except KeyError as exc:
            raise ModelFileError(f"model file {meta_path} lacks {exc}; re-export the reduction") from None
        d = len(reduction.columns)
        if not (reduction.components.ndim == 2 and reduction.components.shape[1] == d
                and all(len(a) == d for a in (reduction.medians, reduction.mean, reduction.scale))):
            raise ModelFileError(f"model file {meta_path} has arrays that do not match its {d} columns; re-export the reduction")
        return reduction


def _fixed_signs(components: np.ndarray) -> np.ndarray:
    """Each component's sign flipped so its largest loading is positive: a component is defined up to
    sign, and a fixed one keeps refits and reports comparable."""
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    return components * np.where(signs == 0, 1.0, signs)[:, None]
