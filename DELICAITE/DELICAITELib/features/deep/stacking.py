"""Linear stacking of the two phase CNNs (PAPER.md, "Features": "their probabilities combined by linear
regression"): a logistic regression of PD on logit(p_AP) and logit(p_VP).

Fit it on probabilities the CNNs did not train on (out-of-fold or a validation set): on their own
training crops the CNNs are near 0/1 and the weights would mean little. The fitted model is three
numbers, stored as plain JSON (to_dict / from_dict) so it can sit in a model.json; no pickle.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.linear_model import LogisticRegression

from ...errors import DelicaiteError

STACKING_KIND = "delicaite-phase-stacking"
STACKING_VERSION = 1
PROBABILITY_CLIP = 1e-6  # keeps logit finite for a CNN that outputs exactly 0 or 1


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    return np.log(p) - np.log1p(-p)


def _check_probabilities(p_ap, p_vp) -> tuple[np.ndarray, np.ndarray]:
    ap, vp = (np.asarray(p, dtype=np.float64).reshape(-1) for p in (p_ap, p_vp))
    if ap.shape != vp.shape or ap.size == 0:
        raise DelicaiteError(f"got {ap.size} AP and {vp.size} VP probabilities; give one of each per patient")
    if not (np.all(np.isfinite(ap)) and np.all(np.isfinite(vp))) or min(ap.min(), vp.min()) < 0 or max(ap.max(), vp.max()) > 1:
        raise DelicaiteError("AP/VP probabilities must be finite numbers in [0, 1]; pass the CNNs' predict_proba")
    return ap, vp


class PhaseStacking:
    """PD probability = sigmoid(intercept + w_AP · logit(p_AP) + w_VP · logit(p_VP)).

    ``C`` is scikit-learn's inverse L2 strength (the default 1.0 keeps the weights finite when the two
    groups separate perfectly; ``math.inf`` fits without penalty)."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = float(C)
        self.coef_: np.ndarray | None = None  # (w_AP, w_VP)
        self.intercept_: float | None = None
        self.n_train_: int | None = None

    def fit(self, p_ap, p_vp, y) -> PhaseStacking:
        ap, vp = _check_probabilities(p_ap, p_vp)
        labels = np.asarray(y, dtype=np.float64).reshape(-1)
        if labels.shape != ap.shape or not np.all(np.isin(labels, (0.0, 1.0))):
            raise DelicaiteError(f"give one 0/1 PD label per patient ({ap.size} probabilities, {labels.size} labels)")
        if labels.min() == labels.max():
            raise DelicaiteError("all PD labels are equal; stacking needs patients with and without PD")
        model = LogisticRegression(C=self.C, max_iter=1000).fit(np.column_stack([_logit(ap), _logit(vp)]), labels)
        self.coef_ = model.coef_[0].astype(np.float64)
        self.intercept_ = float(model.intercept_[0])
        self.n_train_ = int(ap.size)
        return self

    def predict_proba(self, p_ap, p_vp) -> np.ndarray:
        """Combined PD probability per patient."""
        if self.coef_ is None:
            raise DelicaiteError("the stacking model is not fitted; call fit (or from_dict) first")
        ap, vp = _check_probabilities(p_ap, p_vp)
        score = self.intercept_ + self.coef_[0] * _logit(ap) + self.coef_[1] * _logit(vp)
        return 1.0 / (1.0 + np.exp(-score))

    def to_dict(self) -> dict:
        """Plain JSON numbers (floats round-trip exactly through json)."""
        if self.coef_ is None:
            raise DelicaiteError("the stacking model is not fitted; call fit first")
        return {"kind": STACKING_KIND, "version": STACKING_VERSION, "intercept": self.intercept_,
                "coef": {"AP": float(self.coef_[0]), "VP": float(self.coef_[1])},
                "C": self.C if math.isfinite(self.C) else None, "n_train": self.n_train_}

    @classmethod
    def from_dict(cls, data: dict) -> PhaseStacking:
        if not isinstance(data, dict) or data.get("kind") != STACKING_KIND or data.get("version") != STACKING_VERSION:
            raise DelicaiteError(f"not a {STACKING_KIND} version {STACKING_VERSION} entry; re-export the model")
        try:
            stacking = cls(math.inf if data["C"] is None else data["C"])
            stacking.coef_ = np.array([data["coef"]["AP"], data["coef"]["VP"]], dtype=np.float64)
            stacking.intercept_ = float(data["intercept"])
            stacking.n_train_ = None if data["n_train"] is None else int(data["n_train"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DelicaiteError(f"the stacking entry lacks or mistypes {exc}; re-export the model") from None
        if not (np.all(np.isfinite(stacking.coef_)) and math.isfinite(stacking.intercept_)):
            raise DelicaiteError("the stacking entry holds non-finite weights; re-export the model")
        return stacking


def save_stacking(stacking: PhaseStacking, directory, note: str | None = None) -> None:
    """The three weights as a checksummed model folder (no arrays: model.json carries them)."""
    from ...storage import write_artifact

    write_artifact(directory, {}, {"stacking": stacking.to_dict(), "note": note}, STACKING_KIND, STACKING_VERSION)


def load_stacking(path) -> PhaseStacking:
    from ...storage import read_artifact

    _, meta, _ = read_artifact(path, STACKING_KIND, STACKING_VERSION)
    return PhaseStacking.from_dict(meta.get("stacking"))
