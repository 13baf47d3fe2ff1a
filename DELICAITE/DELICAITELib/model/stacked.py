"""All ensemble members as one network: each weight gets a leading member axis.

Members are small (one hidden layer of 32 units), so training them one after another is dominated by
per-operation overhead; stacked, one full-batch step trains every member at once. Members stay
independent: the loss is the sum of the members' losses and Adam's update is element-wise, so each
member follows the same path as if trained alone. A bootstrap sample enters as per-patient counts
(a weighted full-batch loss equals the loss over the sample's repeated rows).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .network import TOWERS, InteractionNet


class StackedTower(nn.Module):
    """One tower (Linear → ReLU → Dropout → Linear, plus the linear path when ``linears`` are given) for
    M members; weights laid out as nn.Linear's."""

    def __init__(self, towers: list[nn.Sequential], linears: list[nn.Linear] | None = None):
        super().__init__()
        first, last = [t[0] for t in towers], [t[3] for t in towers]
        self.w1 = nn.Parameter(torch.stack([layer.weight.detach() for layer in first]))  # (M, H, p)
        self.b1 = nn.Parameter(torch.stack([layer.bias.detach() for layer in first]))  # (M, H)
        self.w2 = nn.Parameter(torch.stack([layer.weight.detach() for layer in last]))  # (M, 1, H)
        self.b2 = nn.Parameter(torch.stack([layer.bias.detach() for layer in last]))  # (M, 1)
        self.dropout = float(towers[0][2].p)
        self.w0 = None if linears is None else nn.Parameter(torch.stack([layer.weight.detach() for layer in linears]))  # (M, 1, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(M, n): every member's output for every row of x (n, p)."""
        members, units, n_features = self.w1.shape
        # every member reads the same x: one (n, p) × (p, M·H) product instead of M small ones
        hidden = F.linear(x, self.w1.reshape(members * units, n_features), self.b1.reshape(-1))
        hidden = F.dropout(torch.relu(hidden), self.dropout, self.training).view(len(x), members, units)
        out = (hidden * self.w2[:, 0, :]).sum(dim=-1).T + self.b2
        return out if self.w0 is None else out + (x @ self.w0[:, 0, :].T).T

    def input_norms(self) -> torch.Tensor:
        """(M, p): per member and covariate, the norm of its first-layer column and linear weight together."""
        squared = (self.w1**2).sum(dim=1)
        return (squared if self.w0 is None else squared + self.w0[:, 0, :] ** 2).sqrt()

    def weight_norm(self) -> torch.Tensor:
        norm = (self.w1**2).sum() + (self.w2**2).sum()
        return norm if self.w0 is None else norm + (self.w0**2).sum()

    def copy_into(self, towers: list[nn.Sequential], linears: list[nn.Linear] | None = None):
        with torch.no_grad():
            if linears is not None:
                for m, layer in enumerate(linears):
                    layer.weight.copy_(self.w0[m])
            for m, tower in enumerate(towers):
                tower[0].weight.copy_(self.w1[m])
                tower[0].bias.copy_(self.b1[m])
                tower[3].weight.copy_(self.w2[m])
                tower[3].bias.copy_(self.b2[m])


class StackedInteractionNet(nn.Module):
    """M InteractionNets trained as one; the penalty norms are sums over members (Penalties.term)."""

    def __init__(self, networks: list[InteractionNet]):
        super().__init__()
        self.main, self.interaction = (StackedTower([getattr(net, tower) for net in networks], _linears(networks, tower))
                                       for tower in TOWERS)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logit, g, h), each (M, n)."""
        g, h = self.main(x), self.interaction(x)
        return g + t * h / 2.0, g, h

    def weight_norm(self, tower: str) -> torch.Tensor:
        return getattr(self, tower).weight_norm()

    def input_group_norm(self, tower: str, weights: torch.Tensor | None = None) -> torch.Tensor:
        norms = getattr(self, tower).input_norms()  # (M, p)
        return norms.sum() if weights is None else (norms * weights).sum()

    def copy_into(self, networks: list[InteractionNet]):
        for tower in TOWERS:
            getattr(self, tower).copy_into([getattr(net, tower) for net in networks], _linears(networks, tower))


def _linears(networks: list[InteractionNet], tower: str) -> list[nn.Linear] | None:
    """The members' linear paths of ``tower`` (all members have one or none)."""
    return [getattr(net, f"{tower}_linear") for net in networks] if networks[0].linear_path else None
