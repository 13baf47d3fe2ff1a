"""Choosing the penalties of h's tower on the out-of-bag patients of the bootstrap ensemble.

No single setting suits every cohort (Testing/benchmarks/bench_interaction.py, Tian-style simulations):
with a linear interaction a strong L2 on h's tower is best, with a curved one in many patients a light
one. So the ensemble is fitted once per candidate in INTERACTION_GRID, with g's penalties as given, and
the candidate with the lowest weighted log-loss of P(PD | x, received therapy) on out-of-bag patients
is kept; each patient is predicted by the members that did not train on it (a cross-validation the
bootstrap gives for free). g's penalties stay fixed so that the differences in loss come from h.
Each candidate is also refitted with adaptive input weights taken from its own ensemble
(model/adaptive.py), so the search decides per cohort whether the refit helps: it did with many noise
covariates or many patients, and not always with few patients, where the first ensemble's ranking of
the covariates is itself noise.
Criteria that score h directly on the out-of-bag patients were compared on development seeds: the
doubly robust pseudo-outcome loss and the R-loss (both with nuisances averaged over the candidates)
chose the strongest penalties at n = 300 and lost to the log-loss; the rank correlation with the
pseudo-outcome did no better than the log-loss.
Choosing g's penalties the same way was tried and dropped: with 50 covariates it picked a strong group
lasso for g, after which h got worse. The test sets never take part: model choice on training
patients only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from .adaptive import adaptive_penalties
from .training import Penalties

INTERACTION_GRID = ((1e-3, 5e-3), (3e-3, 5e-3), (1e-2, 5e-3))  # (L2 decay, input group lasso) of h
POOLING = ("one_se", "best")


def out_of_bag_effects(networks, bootstrap_rows, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(g, h, seen): each patient's mean g and h over the members whose bootstrap sample left that
    patient out; ``seen`` marks the patients out of at least one sample."""
    n = len(xs)
    g_sum, h_sum, count = np.zeros(n), np.zeros(n), np.zeros(n)
    xt = torch.as_tensor(xs, dtype=torch.float32)
    with torch.no_grad():
        for net, rows in zip(networks, bootstrap_rows):
            left_out = np.ones(n, dtype=bool)
            left_out[rows] = False
            net.eval()
            g, h = net.effects(xt[left_out])
            g_sum[left_out] += g.cpu().numpy()
            h_sum[left_out] += h.cpu().numpy()
            count[left_out] += 1
    seen = count > 0
    if not seen.any():
        raise ValueError("no patient is out of bag: the penalty choice needs bootstrap samples")
    safe = np.maximum(count, 1)
    return g_sum / safe, h_sum / safe, seen


def out_of_bag_losses(networks, bootstrap_rows, xs, t, y, w) -> tuple[np.ndarray, np.ndarray]:
    """(loss, weight) per out-of-bag patient: the log-loss of P(PD | x, received therapy) = expit(g + T·h/2)."""
    g, h, seen = out_of_bag_effects(networks, bootstrap_rows, xs)
    logit = torch.as_tensor(g[seen] + t[seen] * h[seen] / 2.0)
    losses = F.binary_cross_entropy_with_logits(logit, torch.as_tensor(y[seen], dtype=logit.dtype), reduction="none")
    return losses.numpy(), np.asarray(w[seen], dtype=float)


def out_of_bag_log_loss(networks, bootstrap_rows, xs: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Weighted log-loss of P(PD | x, received therapy) = expit(g + T·h/2) on the out-of-bag patients."""
    return _weighted_mean(*out_of_bag_losses(networks, bootstrap_rows, xs, t, y, w))


def _weighted_mean(losses: np.ndarray, weights: np.ndarray) -> float:
    return float((losses * weights).sum() / weights.sum())


def within_one_standard_error(per_patient: dict[str, tuple[np.ndarray, np.ndarray]], best: str) -> list[str]:
    """The candidates whose weighted mean loss exceeds the best's by at most one standard error of the
    paired (same patients) difference; the best is always among them."""
    kept = []
    for label, (losses, weights) in per_patient.items():
        diff = losses - per_patient[best][0]
        mean = (weights * diff).sum() / weights.sum()
        standard_error = np.sqrt((weights**2 * (diff - mean) ** 2).sum()) / weights.sum()
        if label == best or mean <= standard_error:
            kept.append(label)
    return kept


def _label(penalties: Penalties, kind: str = "") -> str:
    """The candidate's name: h's penalties, and ",screened" / ",adaptive" for pilot / refit input weights."""
    return f"decay={penalties.interaction_decay:g},inputs={penalties.interaction_inputs:g}{kind}"


@dataclass
class PenaltyChoice:
    """The search's outcome: the best candidate's penalties, the ensemble kept (the best one, or the
    members of every candidate in ``pooled``), each candidate's out-of-bag loss."""

    penalties: Penalties
    networks: list
    losses: dict[str, float]
    pooled: list[str]


def choose_penalties(fit_ensemble: Callable[[Penalties], list], bootstrap_rows, xs, t, y, w,
                     main: tuple[float, float], grid=INTERACTION_GRID, adaptive_gamma: float = 1.0,
                     pooling: str = "one_se", input_weights: tuple[float, ...] | None = None) -> PenaltyChoice:
    """Search h's candidates in ``grid`` with g's (decay, inputs) = ``main``; with ``adaptive_gamma`` > 0
    each candidate also gets an adaptive refit (model/adaptive.py: input weights from that candidate's
    own ensemble); ``input_weights`` (pilot weights, model/adaptive.py's screen_weights) start both towers
    of every candidate's first fit. ``pooling`` "best" keeps the lowest loss's ensemble; "one_se" pools the
    members of every candidate within one standard error of it (the one-standard-error rule: candidates the
    out-of-bag patients cannot tell apart are averaged rather than picked between by noise).

    ``fit_ensemble(penalties)`` trains every member on its bootstrap sample (``bootstrap_rows``, the same
    samples and seeds for every candidate, so the comparison sees one source of noise)."""
    if pooling not in POOLING:
        raise ValueError(f"pooling must be one of {POOLING}, got {pooling!r}")
    fits, per_patient = {}, {}

    def consider(penalties: Penalties, kind: str) -> list:
        networks = fit_ensemble(penalties)
        fits[_label(penalties, kind)] = (penalties, networks)
        per_patient[_label(penalties, kind)] = out_of_bag_losses(networks, bootstrap_rows, xs, t, y, w)
        return networks

    for decay, inputs in grid:
        penalties = Penalties(*main, decay, inputs, input_weights, input_weights)
        networks = consider(penalties, "" if input_weights is None else ",screened")
        if adaptive_gamma > 0:
            consider(adaptive_penalties(penalties, networks, adaptive_gamma), ",adaptive")
    losses = {label: _weighted_mean(*pair) for label, pair in per_patient.items()}
    best = min(losses, key=losses.get)
    pooled = within_one_standard_error(per_patient, best) if pooling == "one_se" else [best]
    return PenaltyChoice(fits[best][0], [net for label in pooled for net in fits[label][1]], losses, pooled)
