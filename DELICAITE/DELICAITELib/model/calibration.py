"""Calibration of g and h on the out-of-bag patients of the bootstrap ensemble.

Why: the members are trained without early stopping on bootstrap samples (repeated patients), so on
the patients they saw they overfit, and an overfit logistic model stretches its logits. The main
tower's g stretches most (on the clinical simulation its out-of-bag slope was about 0.2), and h is
stretched too (slope about 0.8) and shifted: with HAIC better on average, a stretched h is too
negative on average, which was the bias the audit of issue 14 measured (estimated minus true h
−0.4 to −0.7 on the logit scale) and why HAIC was recommended too often.

How: each training patient's g and h are averaged over the members that did not train on it (the
out-of-bag effects, model/selection.py), and a weighted logistic regression (the inverse-propensity
weights of the fit) of PD on them,

    logit P(PD | x, T) = a + b·g_oob(x) + T · (c + d·h_oob(x)) / 2,

gives the four numbers that map every member's g and h onto the probability scale the patients show:
g' = a + b·g, h' = c + d·h. It is Platt scaling of the two effects, fitted on patients the members
never saw. A slope d ≤ 0 means the ensemble's h ranks patients no better than chance out of bag; then
h' is the constant c (the average effect, no interaction) rather than a flipped h.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from .selection import out_of_bag_effects


@dataclass(frozen=True)
class EffectCalibration:
    """g' = g_intercept + g_slope·g, h' = h_intercept + h_slope·h (the identity: 0, 1, 0, 1)."""

    g_intercept: float = 0.0
    g_slope: float = 1.0
    h_intercept: float = 0.0
    h_slope: float = 1.0
    n_out_of_bag: int = 0

    def apply(self, g: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.g_intercept + self.g_slope * g, self.h_intercept + self.h_slope * h

    def as_dict(self) -> dict:
        return {k: (int(v) if k == "n_out_of_bag" else float(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, record: dict | None) -> EffectCalibration:
        return cls() if record is None else cls(**{k: record[k] for k in cls.__dataclass_fields__ if k in record})


def fit_calibration(networks, bootstrap_rows, xs: np.ndarray, t: np.ndarray, y: np.ndarray,
                    w: np.ndarray) -> EffectCalibration:
    """The calibration of ``networks`` (member m trained on ``bootstrap_rows[m]``) on the out-of-bag
    patients, weighted by ``w``; the identity when fewer than 20 patients are out of bag or PD is constant."""
    g, h, seen = out_of_bag_effects(networks, bootstrap_rows, xs)
    if seen.sum() < 20 or len(np.unique(y[seen])) < 2:
        return EffectCalibration()
    g, h, t, y, w = g[seen], h[seen], t[seen], y[seen], w[seen]
    features = np.column_stack([g, t / 2.0, t * h / 2.0])
    fit = LogisticRegression(C=np.inf, max_iter=5000).fit(features, y, sample_weight=w)
    a, (b, c, d) = float(fit.intercept_[0]), (float(v) for v in fit.coef_[0])
    if d <= 0.0:  # no usable ranking out of bag: keep the average effect only
        fit = LogisticRegression(C=np.inf, max_iter=5000).fit(features[:, :2], y, sample_weight=w)
        a, (b, c), d = float(fit.intercept_[0]), (float(v) for v in fit.coef_[0]), 0.0
    return EffectCalibration(a, b, c, d, int(len(y)))
