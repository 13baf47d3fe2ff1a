"""The recommendation for one patient, and the rule that makes it: the one place both live.

Sign convention: h(x) = logit P(PD | x, HAIC) − logit P(PD | x, TACE). HAIC is recommended when
h < −c, TACE when h > c, "no clear preference" in between; the cutoff c ≥ 0 is stored with the model.
A patient whose received therapy equals the recommendation is in the "Maintain" group, one who
received the other therapy in "Alter"; without a preference, in neither.

Every door shows what :class:`Prediction` holds and words it with :func:`reason` and :func:`rule_text`.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field

import numpy as np

from .errors import DelicaiteError

TACE, HAIC = "TACE", "HAIC"
NO_PREFERENCE = "no clear preference"
RECOMMENDATIONS = (TACE, HAIC, NO_PREFERENCE)
MAINTAIN, ALTER, NEITHER = "Maintain", "Alter", "No clear preference"  # groups by received vs recommended
SCORE_DEFINITION = "h = logit P(PD | HAIC) − logit P(PD | TACE)"
SPREAD_NAME = "ensemble spread"  # what lower–upper around h is called wherever it is shown
SPREAD_MEANING = ("the central share of the model's ensemble members' h: how much they disagree, not a confidence "
                  "interval for the true h")


def check_cutoff(cutoff: float) -> float:
    cutoff = float(cutoff)
    if not np.isfinite(cutoff) or cutoff < 0:
        raise DelicaiteError(f"the recommendation cutoff must be a non-negative number, got {cutoff}")
    return cutoff


def recommend(h, cutoff: float = 0.0) -> np.ndarray:
    """"HAIC" where h < −cutoff, "TACE" where h > cutoff, else "no clear preference" (object array)."""
    cutoff = check_cutoff(cutoff)
    h = np.atleast_1d(np.asarray(h, dtype=float))
    out = np.full(h.shape, NO_PREFERENCE, dtype=object)
    out[h < -cutoff] = HAIC
    out[h > cutoff] = TACE
    return out


def group(received, recommended) -> np.ndarray:
    """Maintain (received = recommended), Alter (the other therapy) or No clear preference, per patient."""
    received = np.asarray(received, dtype=object)
    recommended = np.asarray(recommended, dtype=object)
    return np.where(recommended == NO_PREFERENCE, NEITHER, np.where(recommended == received, MAINTAIN, ALTER))


def _bounds(cutoff: float) -> tuple[str, str]:
    """(−c, c) as text; a zero cutoff reads 0 on both sides."""
    c = check_cutoff(cutoff)
    return ("0", "0") if c == 0 else (f"−{c:g}", f"{c:g}")


def rule_text(cutoff: float) -> str:
    """The rule in one line, e.g. "HAIC when h < −0.2, TACE when h > 0.2, no clear preference in between"."""
    low, high = _bounds(cutoff)
    return f"HAIC when h < {low}, TACE when h > {high}, {NO_PREFERENCE} in between"


def reason(recommendation: str, cutoff: float) -> str:
    """Why this recommendation, in one line (what the Recommend panel and the report say beside it)."""
    low, high = _bounds(cutoff)
    if recommendation == HAIC:
        return f"h < {low}: HAIC lowers the predicted risk of progression"
    if recommendation == TACE:
        return f"h > {high}: TACE lowers the predicted risk of progression"
    if recommendation == NO_PREFERENCE:
        return f"|h| ≤ {high}: neither therapy lowers the predicted risk clearly"
    raise DelicaiteError(f"unknown recommendation {recommendation!r}; expected one of {', '.join(RECOMMENDATIONS)}")


@dataclass(frozen=True)
class Risks:
    """P(PD | x, TACE) and P(PD | x, HAIC)."""

    p_pd_tace: float
    p_pd_haic: float


@dataclass(frozen=True)
class InteractionScore:
    """h, the spread of the model's members around it (``lower`` and ``upper`` hold the central
    ``interval_level`` share of the members' h: how much the bootstrap ensemble disagrees, not a
    confidence interval for the true h — on simulated cohorts it covers the truth less often than its
    level says, see docs/benchmarks), and h's percentile among the training patients' scores."""

    h: float
    lower: float
    upper: float
    interval_level: float
    training_percentile: float


@dataclass(frozen=True)
class Driver:
    """A model input and its contribution to this patient's h (< 0 favours HAIC, > 0 TACE)."""

    feature: str
    contribution: float


@dataclass(frozen=True)
class Prediction:
    """What the model says about one patient: both risks, h, the recommendation under ``cutoff``, the
    inputs that move h most, and the optional inputs that were missing and took the training value."""

    risk: Risks
    score: InteractionScore
    cutoff: float
    drivers: tuple[Driver, ...] = ()
    imputed: tuple[str, ...] = field(default=())

    def __post_init__(self):
        numbers = (("P(PD | TACE)", self.risk.p_pd_tace), ("P(PD | HAIC)", self.risk.p_pd_haic), ("h", self.score.h),
                   ("h's spread", self.score.lower), ("h's spread", self.score.upper), ("cutoff", self.cutoff))
        bad = [name for name, value in numbers if not math.isfinite(float(value))]
        if bad:  # never written, never shown: NaN is no risk
            raise DelicaiteError(f"the model gave a non-finite {', '.join(dict.fromkeys(bad))} for this patient: "
                                 "its file or the inputs are broken; check the model folder and the covariates")

    @property
    def recommendation(self) -> str:
        return str(recommend(self.score.h, self.cutoff)[0])

    @property
    def reason(self) -> str:
        return reason(self.recommendation, self.cutoff)

    @property
    def rule(self) -> str:
        return rule_text(self.cutoff)
