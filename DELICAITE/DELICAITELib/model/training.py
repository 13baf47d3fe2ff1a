"""Training of the ensemble: full-batch Adam, every member at once (model/stacked.py), with optional
early stopping on held-out patients; and the penalties in its loss."""

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .network import InteractionNet
from .stacked import StackedInteractionNet


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
        device = next(net.parameters()).device
        weights = lambda w: None if w is None else torch.as_tensor(w, dtype=torch.float32, device=device)  # noqa: E731
        return (self.main_decay * net.weight_norm("main")
                + self.main_inputs * net.input_group_norm("main", weights(self.main_input_weights))
                + self.interaction_decay * net.weight_norm("interaction")
                + self.interaction_inputs * net.input_group_norm("interaction", weights(self.interaction_input_weights)))


def _per_member_bce(logit: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(M,): each member's weighted mean BCE; ``weights`` (M, n) is zero for rows a member does not use."""
    bce = F.binary_cross_entropy_with_logits(logit, y.expand_as(logit), reduction="none")
    return (bce * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-12)


def train_ensemble(
    x: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    seeds: list[int],
    *,
    hidden_units: int,
    dropout: float,
    linear_path: bool = True,
    penalties: Penalties,
    interaction_penalty: float,
    learning_rate: float,
    epochs: int,
    patience: int,
    device: str,
) -> list[InteractionNet]:
    """One InteractionNet per (training rows, early-stopping rows) in ``splits``; member m starts from
    the weights torch draws under seeds[m] and trains on its rows (repeats allowed: a bootstrap sample).

    Each member's loss = weighted mean BCE over its rows + per tower (decay·Σ‖W‖² + inputs·Σ_j ‖W1[:, j]‖,
    a group lasso over the input covariates; see Penalties) + interaction_penalty·mean(h²) over its rows;
    the last term shrinks h towards zero (no interaction) unless the data insist, in the spirit of Tian et
    al.'s penalised modified-covariate regression. A member with early-stopping rows keeps the weights
    with its lowest weighted validation BCE and stops improving after ``patience`` epochs without one.
    The global torch RNG is left as it was.
    """
    dev = torch.device(device)
    n = len(x)
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=dev)  # noqa: E731
    xt, tt, yt = as_t(x), as_t(t), as_t(y)
    counts = np.stack([np.bincount(train, minlength=n) for train, _ in splits]).astype(float)  # (M, n)
    held_out = np.zeros_like(counts)
    for m, (_, val) in enumerate(splits):
        held_out[m, val] = 1.0
    train_weights, row_counts, val_weights = as_t(counts * w), as_t(counts), as_t(held_out * w)

    with torch.random.fork_rng(devices=[]):
        networks = []
        for seed in seeds:
            torch.manual_seed(int(seed))
            networks.append(InteractionNet(x.shape[1], hidden_units, dropout, linear_path))
        torch.manual_seed(int(seeds[0]))  # dropout masks for the whole stack
        stacked = StackedInteractionNet(networks).to(dev)
        opt = torch.optim.Adam(stacked.parameters(), lr=learning_rate)
        best = _BestEpochs(stacked, torch.as_tensor(held_out.any(axis=1), device=dev), patience)
        for _ in range(int(epochs)):
            stacked.train()
            opt.zero_grad()
            logit, _, h = stacked(xt, tt)
            loss = _per_member_bce(logit, yt, train_weights).sum() + penalties.term(stacked)
            if interaction_penalty:
                loss = loss + interaction_penalty * ((h**2 * row_counts).sum(dim=1) / row_counts.sum(dim=1)).sum()
            loss.backward()
            opt.step()
            if best.all_stopped():
                break
            if best.watching.any():
                stacked.eval()
                with torch.no_grad():
                    best.update(_per_member_bce(stacked(xt, tt)[0], yt, val_weights))
        best.restore()
    stacked.copy_into(networks)
    return [net.to(dev).eval() for net in networks]


class _BestEpochs:
    """Early stopping per member of a stack: each member with held-out rows keeps the weights of its
    lowest validation loss and stops looking after ``patience`` epochs without improvement."""

    def __init__(self, stacked: StackedInteractionNet, has_validation: torch.Tensor, patience: int):
        self.stacked, self.has_validation, self.patience = stacked, has_validation, int(patience)
        self.loss = torch.full(has_validation.shape, float("inf"), device=has_validation.device)
        self.state = {k: v.detach().clone() for k, v in stacked.state_dict().items()}
        self.since = torch.zeros(has_validation.shape, dtype=torch.long, device=has_validation.device)
        self.watching = has_validation.clone()  # members still looking for a better epoch

    def all_stopped(self) -> bool:
        """True when every member has held-out rows and none is still looking (one without trains on)."""
        return bool(self.has_validation.all()) and not bool(self.watching.any())

    def update(self, val_loss: torch.Tensor):
        improved = self.watching & (val_loss < self.loss - 1e-6)
        self.loss = torch.where(improved, val_loss, self.loss)
        for k, v in self.stacked.state_dict().items():
            self.state[k][improved] = v[improved]
        self.since = torch.where(improved, torch.zeros_like(self.since), self.since + self.watching.long())
        self.watching = self.watching & (self.since < self.patience)

    def restore(self):
        """Put each early-stopped member's best weights back; the others keep their last."""
        if not self.has_validation.any():
            return
        keep = self.has_validation & torch.isfinite(self.loss)
        current = self.stacked.state_dict()
        self.stacked.load_state_dict({k: torch.where(keep.view(-1, *[1] * (v.dim() - 1)), self.state[k], v)
                                      for k, v in current.items()})
