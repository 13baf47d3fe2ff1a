"""Choosing the weight decay of the interaction model on held-out training patients.

With L2 alone, no single value suited every cohort: on Tian-style simulations a strong decay was best
for a linear interaction in a few hundred patients and a weak one for a nonlinear interaction in two
thousand (Testing/benchmarks/bench_interaction.py). The default now pairs a light L2 with a group
lasso over the inputs; `weight_decay="auto"` still lets a cohort choose its L2 weight: it fits one member per
candidate on a stratified 75 % of the training patients and keeps the value with the lowest
(inverse-propensity weighted) log-loss of P(PD | x, received therapy) on the other 25 %. The test
sets never take part: this is model choice on internal validation only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .training import train_member

WEIGHT_DECAY_GRID = (3e-4, 1e-3, 3e-3)  # around the default 1e-3
VALIDATION_SHARE = 0.25


def validation_split(t: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows): VALIDATION_SHARE of each therapy × PD stratum held out."""
    rng = np.random.default_rng(seed)
    held = []
    for stratum in {(a, b) for a, b in zip(t, y)}:
        rows = np.flatnonzero((t == stratum[0]) & (y == stratum[1]))
        held.extend(rng.permutation(rows)[: int(round(VALIDATION_SHARE * len(rows)))])
    held = np.sort(np.asarray(held, dtype=int))
    return np.setdiff1d(np.arange(len(t)), held), held


def held_out_log_loss(net, xs: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean binary cross-entropy of the member's P(PD | x, received therapy)."""
    with torch.no_grad():
        net.eval()
        logit = net(torch.as_tensor(xs, dtype=torch.float32), torch.as_tensor(t, dtype=torch.float32))[0]
        losses = F.binary_cross_entropy_with_logits(logit, torch.as_tensor(y, dtype=torch.float32), reduction="none")
    return float((losses.numpy() * w).sum() / w.sum())


def choose_weight_decay(xs: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray, *, seed: int,
                        grid=WEIGHT_DECAY_GRID, **member_options) -> tuple[float, dict[str, float]]:
    """The grid value with the lowest held-out log-loss, and every value's loss (keys as text)."""
    fit_rows, held = validation_split(t, y, seed)
    if len(held) == 0 or len(np.unique(t[fit_rows])) < 2:
        return float(grid[len(grid) // 2]), {}
    scores = {}
    for decay in grid:  # the same seed for every candidate: the comparison sees one source of noise
        net = train_member(xs, t, y, w, fit_rows, held[:0], weight_decay=float(decay), seed=seed, **member_options)
        scores[f"{decay:g}"] = held_out_log_loss(net, xs[held], t[held], y[held], w[held])
    best = min(scores, key=scores.get)
    return float(best), scores
