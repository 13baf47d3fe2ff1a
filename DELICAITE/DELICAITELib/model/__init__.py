"""Covariate-interaction model: P(PD | x, TACE), P(PD | x, HAIC), the score h(x) and the recommendation.

h(x) = logit P(PD | x, HAIC) − logit P(PD | x, TACE); the rule that turns h into a recommendation is
recommendation.py's. Model files: weights.npz + model.json, both sha256-checked.
"""

from ..recommendation import NO_PREFERENCE  # noqa: F401
from .interaction import THERAPY_CODE, InteractionModel, encode_therapy  # noqa: F401
from .network import InteractionNet  # noqa: F401
from .persistence import FORMAT_NAME, FORMAT_VERSION, load_model, save_model  # noqa: F401
from .tian import TianLasso  # noqa: F401

__all__ = [
    "InteractionModel",
    "TianLasso",
    "InteractionNet",
    "encode_therapy",
    "load_model",
    "save_model",
    "THERAPY_CODE",
    "NO_PREFERENCE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]
