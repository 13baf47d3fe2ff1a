"""Training of one ensemble member: full-batch Adam with early stopping on held-out patients."""

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .network import InteractionNet


@dataclass(frozen=True)
class Penalties:
    """Each tower's penalties in the loss: L2 on its weights (decay) and a group lasso over its inputs.

    ``*_input_weights`` (one per covariate, or None for all 1) turn a tower's group lasso into an
    adaptive one (see model/adaptive.py)."""

    main_decay: float
    main_inputs: float
    interaction_decay: float
    interaction_inputs: float
    main_input_weights: tuple[float, ...] | None = None
    interaction_input_weights: tuple[float, ...] | None = None

    def as_dict(self) -> dict:
        as_json = lambda v: None if v is None else [float(x) for x in v] if isinstance(v, tuple) else float(v)  # noqa: E731
        return {k: as_json(v) for k, v in asdict(self).items()}

    def term(self, net: InteractionNet) -> torch.Tensor:
        device = net.main[0].weight.device
        weights = lambda w: None if w is None else torch.as_tensor(w, dtype=torch.float32, device=device)  # noqa: E731
        return (self.main_decay * net.weight_norm("main")
                + self.main_inputs * net.input_group_norm("main", weights(self.main_input_weights))
                + self.interaction_decay * net.weight_norm("interaction")
                + self.interaction_inputs * net.input_group_norm("interaction", weights(self.interaction_input_weights)))


def _weighted_bce(logit: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(logit, y, reduction="none") * w).sum() / w.sum()


def train_member(
    x: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    hidden_units: int,
    dropout: float,
    penalties: Penalties,
    interaction_penalty: float,
    learning_rate: float,
    epochs: int,
    patience: int,
    seed: int,
    device: str,
) -> InteractionNet:
    """Fit one InteractionNet on rows ``train_idx`` (repeats allowed: a bootstrap sample).

    Loss = weighted mean BCE + per tower (decay·Σ‖W‖² + inputs·Σ_j ‖W1[:, j]‖, a group lasso over the
    input covariates; see Penalties) + interaction_penalty·mean(h²); the last term
    shrinks h towards zero (no interaction) unless the data insist, in the spirit of Tian et al.'s
    penalised modified-covariate regression. When ``val_idx`` is non-empty the weights with the
    lowest weighted validation BCE are kept and training stops after ``patience`` epochs without
    improvement. The global torch RNG is left as it was (the member's seed is used in a forked RNG).
    """
    dev = torch.device(device)
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=dev)  # noqa: E731
    xt, tt, yt, wt = as_t(x[train_idx]), as_t(t[train_idx]), as_t(y[train_idx]), as_t(w[train_idx])
    has_val = len(val_idx) > 0
    if has_val:
        xv, tv, yv, wv = as_t(x[val_idx]), as_t(t[val_idx]), as_t(y[val_idx]), as_t(w[val_idx])

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = InteractionNet(x.shape[1], hidden_units, dropout).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
        best_loss, best_state, since_best = np.inf, None, 0
        for _ in range(int(epochs)):
            net.train()
            opt.zero_grad()
            logit, _, h = net(xt, tt)
            loss = _weighted_bce(logit, yt, wt) + penalties.term(net)
            if interaction_penalty:
                loss = loss + interaction_penalty * (h**2).mean()
            loss.backward()
            opt.step()
            if not has_val:
                continue
            net.eval()
            with torch.no_grad():
                val_loss = float(_weighted_bce(net(xv, tv)[0], yv, wv))
            if val_loss < best_loss - 1e-6:
                best_loss, best_state, since_best = val_loss, copy.deepcopy(net.state_dict()), 0
            else:
                since_best += 1
                if since_best >= patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
    net.eval()
    return net
