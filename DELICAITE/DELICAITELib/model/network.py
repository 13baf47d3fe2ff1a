"""The torch network of the interaction model: two small towers, main effect g(x) and interaction h(x).

logit P(PD | x, T) = g(x) + T·h(x)/2 with T = −1 for TACE and +1 for HAIC (Tian et al. 2014, the
modified covariate form), so h(x) = logit P(PD | x, HAIC) − logit P(PD | x, TACE).

Each tower is a linear term plus one hidden ReLU layer (a "wide and deep" tower): the family nests
Tian's linear model, and under the same L2 penalty a linear effect costs less on the linear path than
spread over pairs of ReLU units, so the hidden layer is left for what is curved. Without the linear
path a linear h was learned poorly from few patients (InteractionModel's docstring gives the figures).
"""

import torch
from torch import nn

TOWERS = ("main", "interaction")  # the attribute names of g's and h's towers; "<tower>_linear": linear paths


def _tower(n_features: int, hidden_units: int, dropout: float) -> nn.Sequential:
    """One hidden ReLU layer then a single output; ReLU keeps extrapolation linear, so ensemble
    members disagree more far from the training data (which the uncertainty interval relies on)."""
    return nn.Sequential(
        nn.Linear(n_features, hidden_units),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden_units, 1),
    )


def _linear_path(n_features: int) -> nn.Linear:
    """The tower's linear term (no bias: the hidden layer's output bias is the intercept), starting at 0."""
    layer = nn.Linear(n_features, 1, bias=False)
    nn.init.zeros_(layer.weight)
    return layer


class InteractionNet(nn.Module):
    """MLP with separate towers for g(x) and h(x); inputs are standardised covariates.

    Separate towers let the training penalise h alone (shrinking it towards "no interaction")
    without pulling on the main effect. ``linear_path`` adds each tower's linear term (models saved
    before it existed have none).
    """

    def __init__(self, n_features: int, hidden_units: int = 32, dropout: float = 0.1, linear_path: bool = True):
        super().__init__()
        self.n_features = int(n_features)
        self.hidden_units = int(hidden_units)
        self.dropout = float(dropout)
        self.linear_path = bool(linear_path)
        self.main = _tower(self.n_features, self.hidden_units, self.dropout)
        self.interaction = _tower(self.n_features, self.hidden_units, self.dropout)
        if self.linear_path:
            self.main_linear = _linear_path(self.n_features)
            self.interaction_linear = _linear_path(self.n_features)

    def linear_weight(self, tower: str) -> torch.Tensor | None:
        """The tower's linear-path weights (1, p), or None without a linear path."""
        return getattr(self, f"{tower}_linear").weight if self.linear_path else None

    def _output(self, tower: str, x: torch.Tensor) -> torch.Tensor:
        out = getattr(self, tower)(x).squeeze(-1)
        return out + getattr(self, f"{tower}_linear")(x).squeeze(-1) if self.linear_path else out

    def effects(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(g(x), h(x)), each of shape (n,)."""
        return self._output("main", x), self._output("interaction", x)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logit P(PD | x, t), g(x), h(x)); t holds −1 (TACE) or +1 (HAIC)."""
        g, h = self.effects(x)
        return g + t * h / 2.0, g, h

    def weight_norm(self, tower: str) -> torch.Tensor:
        """Σ‖W‖² over the weight matrices of one tower, linear path included (biases are not penalised)."""
        norm = sum((layer.weight**2).sum() for layer in getattr(self, tower) if isinstance(layer, nn.Linear))
        linear = self.linear_weight(tower)
        return norm if linear is None else norm + (linear**2).sum()

    def input_norms(self, tower: str) -> torch.Tensor:
        """(p,): per input covariate, the L2 norm of its weights in one tower: its first-layer column and
        its linear-path weight together, so the group lasso drops a covariate from both at once."""
        squared = (getattr(self, tower)[0].weight ** 2).sum(dim=0)
        linear = self.linear_weight(tower)
        return (squared if linear is None else squared + linear[0] ** 2).sqrt()

    def input_group_norm(self, tower: str, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Σ over input covariates of the L2 norm of that covariate's weights in one tower (a group
        lasso: it lets the tower drop covariates that carry nothing, as a whole); ``weights``, one per
        covariate, make it an adaptive group lasso."""
        norms = self.input_norms(tower)
        return norms.sum() if weights is None else (norms * weights).sum()

    def input_importance(self, tower: str) -> torch.Tensor:
        """Per input covariate, the L2 norm of its weights in one tower (inputs are standardised)."""
        return self.input_norms(tower).detach()
