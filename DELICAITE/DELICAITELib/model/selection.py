"""Choosing each tower's penalties on the out-of-bag patients of the bootstrap ensemble.

No single setting suits every cohort (Testing/benchmarks/bench_interaction.py, Tian-style simulations):
a few hundred patients need strong penalties, or the networks predict the patients they did not see
worse than a constant; two thousand patients with a curved interaction need light ones. And the two
towers disagree: with many noise covariates the main effect g(x) wants a strong group lasso that
flattens a curved h(x). So the choice is made per tower, in two stages, by the weighted log-loss of
P(PD | x, received therapy) on out-of-bag patients, each predicted by the members that did not train
on them (a cross-validation the bootstrap gives for free):

1. g's penalties over MAIN_GRID, with h at the lightest;
2. h's penalties over INTERACTION_GRID, with g's chosen.

In stage 2 g's penalties are fixed, so the differences in loss come from h. The test sets never take
part: this is model choice on training patients only.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from .training import Penalties

MAIN_GRID = ((1e-3, 5e-3), (1e-2, 5e-3), (1e-2, 2e-2))  # (L2 decay, input group lasso) of g
INTERACTION_GRID = ((1e-3, 5e-3), (3e-3, 5e-3), (1e-2, 5e-3))  # of h; the first is stage 1's


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


def out_of_bag_log_loss(networks, bootstrap_rows, xs: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Weighted log-loss of P(PD | x, received therapy) = expit(g + T·h/2) on the out-of-bag patients."""
    g, h, seen = out_of_bag_effects(networks, bootstrap_rows, xs)
    logit = torch.as_tensor(g[seen] + t[seen] * h[seen] / 2.0)
    losses = F.binary_cross_entropy_with_logits(logit, torch.as_tensor(y[seen], dtype=logit.dtype), reduction="none")
    return float((losses.numpy() * w[seen]).sum() / w[seen].sum())


def _label(decay: float, inputs: float) -> str:
    return f"decay={decay:g},inputs={inputs:g}"


def choose_penalties(fit_ensemble: Callable[[Penalties], list], bootstrap_rows, xs, t, y, w,
                     main_grid=MAIN_GRID, interaction_grid=INTERACTION_GRID):
    """The two-stage choice: (chosen Penalties, their ensemble, {"main": {label: loss}, "interaction": …}).

    ``fit_ensemble(penalties)`` trains every member on its bootstrap sample (``bootstrap_rows``, the same
    samples and seeds for every candidate, so the comparison sees one source of noise)."""
    def score(penalties: Penalties):
        networks = fit_ensemble(penalties)
        return out_of_bag_log_loss(networks, bootstrap_rows, xs, t, y, w), networks

    h_start = interaction_grid[0]
    stage1 = {_label(*g): (Penalties(*g, *h_start), *score(Penalties(*g, *h_start))) for g in main_grid}
    best_main = min(stage1, key=lambda k: stage1[k][1])
    main = stage1[best_main][0]
    stage2 = {_label(*h_start): stage1[best_main]}
    for h in interaction_grid[1:]:
        candidate = Penalties(main.main_decay, main.main_inputs, *h)
        stage2[_label(*h)] = (candidate, *score(candidate))
    best = min(stage2, key=lambda k: stage2[k][1])
    losses = {"main": {k: v[1] for k, v in stage1.items()}, "interaction": {k: v[1] for k, v in stage2.items()}}
    return stage2[best][0], stage2[best][2], losses
