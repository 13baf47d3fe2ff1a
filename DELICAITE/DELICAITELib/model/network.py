"""The torch network of the interaction model: two small towers, main effect g(x) and interaction h(x).

logit P(PD | x, T) = g(x) + T·h(x)/2 with T = −1 for TACE and +1 for HAIC (Tian et al. 2014, the
modified covariate form), so h(x) = logit P(PD | x, HAIC) − logit P(PD | x, TACE).
"""

import torch
from torch import nn

TOWERS = ("main", "interaction")  # the attribute names of g's and h's towers


def _tower(n_features: int, hidden_units: int, dropout: float) -> nn.Sequential:
    """One hidden ReLU layer then a single output; ReLU keeps extrapolation linear, so ensemble
    members disagree more far from the training data (which the uncertainty interval relies on)."""
    return nn.Sequential(
        nn.Linear(n_features, hidden_units),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden_units, 1),
    )


class InteractionNet(nn.Module):
    """MLP with separate towers for g(x) and h(x); inputs are standardised covariates.

    Separate towers let the training penalise h alone (shrinking it towards "no interaction")
    without pulling on the main effect.
    """

    def __init__(self, n_features: int, hidden_units: int = 32, dropout: float = 0.1):
        super().__init__()
        self.n_features = int(n_features)
        self.hidden_units = int(hidden_units)
        self.dropout = float(dropout)
        self.main = _tower(self.n_features, self.hidden_units, self.dropout)
        self.interaction = _tower(self.n_features, self.hidden_units, self.dropout)

    def effects(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(g(x), h(x)), each of shape (n,)."""
        return self.main(x).squeeze(-1), self.interaction(x).squeeze(-1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logit P(PD | x, t), g(x), h(x)); t holds −1 (TACE) or +1 (HAIC)."""
        g, h = self.effects(x)
        return g + t * h / 2.0, g, h

    def weight_norm(self, tower: str) -> torch.Tensor:
        """Σ‖W‖² over the weight matrices of one tower, "main" or "interaction" (biases are not penalised)."""
        return sum((layer.weight**2).sum() for layer in getattr(self, tower) if isinstance(layer, nn.Linear))

    def input_group_norm(self, tower: str, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Σ over input covariates of the L2 norm of that covariate's first-layer weights in one tower
        (a group lasso: it lets the tower drop covariates that carry nothing, as a whole); ``weights``,
        one per covariate, make it an adaptive group lasso."""
        norms = getattr(self, tower)[0].weight.norm(dim=0)
        return norms.sum() if weights is None else (norms * weights).sum()

    def input_importance(self, tower: str) -> torch.Tensor:
        """Per input covariate, the L2 norm of its first-layer weights in one tower (inputs are standardised)."""
        return getattr(self, tower)[0].weight.detach().norm(dim=0)
