"""A simulated TACE/HAIC cohort with a KNOWN truth, for testing the interaction model.

Covariates follow the marginals of the study's Table 1 (PAPER.md) through a Gaussian copula: each
variable is a transform of one latent standard normal, the latents are correlated (ALT–AST, PT–INR,
albumin–ascites–Child-Pugh, tumour size–PVTT–AFP…), and every marginal is matched at its quartiles
(continuous) or its percentages (binary, ordinal). BCLC follows the staging logic: C when PVTT,
metastasis or ECOG ≥ 1 (the PVTT–metastasis correlation is set so that C is 68 %), else B for > 3
nodules and mostly A otherwise.

The truth (DESIGN.md contracts: T = −1 TACE, +1 HAIC; h > 0 means HAIC raises the PD risk):

    logit P(PD | x, T) = g(x) + T · h(x) / 2

    h(x) = h0 − 5.9·PVTT − 0.6·[tumour number > 3] − 0.6·[AFP ≥ 400] + 0.10·(ALB − 38.8)
    g(x) = g0 + 0.08·(diameter − 11) + 0.5·metastasis + 0.35·(Child-Pugh − 5)
           + 0.3·ln((CRP + 1)/21) + 0.01·(CRE − 72) + 0.3·[tumour number > 3]

The intercepts g0 and h0 are solved so that, under the physician choice below, the disease-control
rates (1 − PD) are those the study reports for its primary set: TACE 27.3 %, HAIC 80.5 %
(``disease_control``, a knob: other rates give other intercepts). With the study's rates (g0 ≈ −0.02,
h0 ≈ 0.41) HAIC is the better therapy (h < 0) for about 85 % of patients (PVTT above all; many
nodules, high AFP and poor albumin tip the others) and TACE, by a smaller margin, for the rest; the
PVTT coefficient was set so that this share is 85 % at the study's rates.

Therapy: "randomized" P(HAIC) = 1/2; "physician" a logistic choice pushed towards HAIC by PVTT,
metastasis, many nodules, size and AFP, away from it by Child-Pugh ≥ 7, with a per-centre preference
(centres after the first spread over ±0.4 log-odds), clipped to [0.1, 0.9].

OS (months) is Weibull (shape 1.2) with a covariate hazard and a hazard ratio of exp(0.7) ≈ 2 for
progressive disease: the therapy acts on survival through PD, so a patient given the therapy with the
lower PD risk lives longer on average, and a Cox model of OS on PD adjusted for prognosis recovers
the log hazard ratio 0.7. Censoring is independent (uniform accrual, 3–60 months of follow-up);
medians land near 10 months.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.special import expit
from scipy.stats import norm

from .clinical.schema import FIELD_NAMES, SCHEMA
from .cohort.folder import Cohort
from .errors import ClinicalError

THERAPIES = ("TACE", "HAIC")
ASSIGNMENTS = ("physician", "randomized")
FIRST_CENTRE_SHARE = 645 / 900  # the study's training centre
PROPENSITY_BOUNDS = (0.1, 0.9)
MONTH_WEEKS = 30.4375 / 7
OS_SCALE_MONTHS = 34.0  # Weibull scale, set so that the median OS is near 10 months

# Latent Gaussian copula: order of the latent variables and their correlations.
_LATENT = ["age", "alb", "alt", "ast", "tbil", "pt", "inr", "plt", "crp", "cre", "max_diameter", "afp",
           "pvtt", "metastasis", "ascites", "child_pugh", "tumour_number", "comorbidity", "ecog"]
_CORR = {
    ("alt", "ast"): 0.7, ("pt", "inr"): 0.9, ("alb", "tbil"): -0.25, ("alb", "ascites"): -0.35,
    ("alb", "child_pugh"): -0.5, ("tbil", "child_pugh"): 0.4, ("ascites", "child_pugh"): 0.45,
    ("inr", "child_pugh"): 0.3, ("pt", "child_pugh"): 0.3, ("alb", "inr"): -0.2, ("alb", "pt"): -0.2,
    ("max_diameter", "afp"): 0.2, ("max_diameter", "pvtt"): 0.25, ("max_diameter", "crp"): 0.3,
    ("max_diameter", "ast"): 0.25, ("pvtt", "afp"): 0.2, ("plt", "max_diameter"): 0.15,
    ("age", "comorbidity"): 0.3, ("age", "cre"): 0.15, ("tumour_number", "metastasis"): 0.15,
    ("pvtt", "ascites"): 0.15, ("crp", "pvtt"): 0.15,
    # tetrachoric correlation giving P(PVTT or metastasis or ECOG >= 1) = 0.68 = BCLC C (Table 1)
    ("pvtt", "metastasis"): 0.56,
}

# Table 1: median and IQR (continuous; log=True for right-skewed, positive variables), clip bounds
_QUARTILES = {
    "age": (44, 52, 61, False, (18, 90), 0),
    "alb": (35.7, 38.8, 42.2, False, (18, 60), 1),
    "alt": (31, 48, 74, True, (5, 2000), 0),
    "ast": (46, 70, 116, True, (8, 3000), 0),
    "tbil": (12, 16, 23, True, (3, 400), 1),
    "pt": (11.68, 12.40, 13.30, True, (9, 40), 2),
    "inr": (1.01, 1.08, 1.15, True, (0.8, 5), 2),
    "plt": (162, 218, 289, True, (20, 1200), 0),
    "crp": (7, 20, 30, True, (0.1, 400), 1),
    "cre": (61, 72, 80, True, (25, 900), 0),
    "max_diameter": (8.2, 11.0, 13.5, True, (3, 30), 1),
}
_AFP_MEDIAN, _AFP_SIGMA = 754.0, 2.8  # lognormal: P(AFP >= 400) = 0.59, broad like real AFP
_P = {"sex_male": 0.88, "comorbidity": 0.093, "ascites": 0.18, "pvtt": 0.60, "metastasis": 0.36,
      "tumour_gt3": 0.55}
_ECOG = ((0, 0.946), (1, 0.054))
_CHILD_PUGH = ((5, 0.65), (6, 0.23), (7, 0.082), (8, 0.024), (9, 0.007))
_ETIOLOGY = (("none", 0.058), ("HBV", 0.930), ("HCV", 0.014))
_BCLC_A = 0.13

# the truth's coefficients (see the module docstring); the intercepts come from intercepts()
_H = dict(pvtt=-5.9, gt3=-0.6, afp400=-0.6, alb=0.10)
_G = dict(diameter=0.08, metastasis=0.5, child_pugh=0.35, log_crp=0.3, cre=0.01, gt3=0.3)
STUDY_DISEASE_CONTROL = (0.273, 0.805)  # TACE, HAIC: the study's primary set (PAPER.md)
_REFERENCE = dict(n=20_000, seed=20261202, n_centres=3)  # the sample the intercepts are solved on
_PROPENSITY = dict(intercept=-1.35, pvtt=1.2, metastasis=0.4, gt3=0.6, diameter=0.10, afp400=0.4, cp7=-0.6)
_CENTRE_SHIFT = 0.4  # per-centre log-odds preference for HAIC, spread over the centres after the first
_OS = dict(shape=1.2, scale=OS_SCALE_MONTHS, pvtt=0.45, metastasis=0.45, child_pugh=0.3, diameter=0.05, afp400=0.25,
           ascites=0.2, pd=0.7)
_FOLLOW_UP = (3.0, 60.0)  # months of potential follow-up, uniform


# ---------------------------------------------------------------- the truth

def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df:
        raise ClinicalError(f"simulate: covariates lack column {name} ({SCHEMA[name].label}) needed by the truth")
    return df[name]


def _gt3(df: pd.DataFrame) -> np.ndarray:
    return (_col(df, "tumour_number").astype(str) == ">3").to_numpy(float)


def true_h_terms(covariates_df: pd.DataFrame) -> pd.DataFrame:
    """The columns the true h is linear in (PVTT, tumour number > 3, AFP ≥ 400, albumin − 38.8): what a
    model that knew the truth's form would regress on (the benchmarks' noise-floor reference)."""
    return pd.DataFrame({
        "pvtt": _col(covariates_df, "pvtt").to_numpy(float),
        "gt3": _gt3(covariates_df),
        "afp400": (_col(covariates_df, "afp").to_numpy(float) >= 400).astype(float),
        "alb": _col(covariates_df, "alb").to_numpy(float) - 38.8,
    }, index=covariates_df.index)


def _h_slopes(covariates_df: pd.DataFrame) -> np.ndarray:
    terms, c = true_h_terms(covariates_df), _H
    return (c["pvtt"] * terms["pvtt"] + c["gt3"] * terms["gt3"] + c["afp400"] * terms["afp400"]
            + c["alb"] * terms["alb"]).to_numpy()


def _g_slopes(covariates_df: pd.DataFrame) -> np.ndarray:
    c = _G
    return (c["diameter"] * (_col(covariates_df, "max_diameter").to_numpy(float) - 11.0)
            + c["metastasis"] * _col(covariates_df, "metastasis").to_numpy(float)
            + c["child_pugh"] * (_col(covariates_df, "child_pugh").to_numpy(float) - 5.0)
            + c["log_crp"] * np.log((_col(covariates_df, "crp").to_numpy(float) + 1.0) / 21.0)
            + c["cre"] * (_col(covariates_df, "cre").to_numpy(float) - 72.0)
            + c["gt3"] * _gt3(covariates_df))


@functools.lru_cache(maxsize=8)
def intercepts(disease_control: tuple[float, float] = STUDY_DISEASE_CONTROL) -> tuple[float, float]:
    """(g0, h0) that give the disease-control rates ``disease_control`` = (TACE, HAIC) under physician
    choice, solved on a fixed reference sample of the covariates (the same numbers every call)."""
    dc_tace, dc_haic = (float(v) for v in disease_control)
    if not (0.0 < dc_tace < 1.0 and 0.0 < dc_haic < 1.0):
        raise ValueError(f"disease-control rates must lie strictly between 0 and 1, got {disease_control}")
    rng = np.random.default_rng(_REFERENCE["seed"])
    cov = _simulate_covariates(_REFERENCE["n"], rng)
    e = _propensity(cov, _centres(len(cov), _REFERENCE["n_centres"], rng), _REFERENCE["n_centres"], "physician")
    g, h = _g_slopes(cov), _h_slopes(cov)

    def rate_gaps(v):
        p_tace, p_haic = expit(v[0] + g - (v[1] + h) / 2), expit(v[0] + g + (v[1] + h) / 2)
        return [np.sum((1 - e) * p_tace) / np.sum(1 - e) - (1 - dc_tace), np.sum(e * p_haic) / np.sum(e) - (1 - dc_haic)]

    solution = least_squares(rate_gaps, x0=[0.0, 0.0], xtol=1e-12, ftol=1e-12)
    if max(abs(v) for v in solution.fun) > 1e-6:
        raise ValueError(f"no intercepts give the disease-control rates {disease_control} under physician choice")
    return float(solution.x[0]), float(solution.x[1])


def true_h_function(covariates_df: pd.DataFrame,
                    disease_control: tuple[float, float] = STUDY_DISEASE_CONTROL) -> np.ndarray:
    """The true interaction h(x) = logit P(PD|x,HAIC) − logit P(PD|x,TACE), on schema-unit covariates."""
    return intercepts(tuple(disease_control))[1] + _h_slopes(covariates_df)


def true_g_function(covariates_df: pd.DataFrame,
                    disease_control: tuple[float, float] = STUDY_DISEASE_CONTROL) -> np.ndarray:
    """The true main effect g(x) (the PD logit averaged over the two therapies), on schema-unit covariates."""
    return intercepts(tuple(disease_control))[0] + _g_slopes(covariates_df)


def true_pd_probability(covariates_df: pd.DataFrame, therapy,
                        disease_control: tuple[float, float] = STUDY_DISEASE_CONTROL) -> np.ndarray:
    """P(PD | x, therapy) under the truth; `therapy` is 'TACE'/'HAIC' or an array of them."""
    t = np.where(np.asarray(therapy) == "HAIC", 1.0, -1.0)
    return expit(true_g_function(covariates_df, disease_control)
                 + t * true_h_function(covariates_df, disease_control) / 2.0)


# ---------------------------------------------------------------- covariates

def _correlation() -> np.ndarray:
    k = len(_LATENT)
    r = np.eye(k)
    for (a, b), v in _CORR.items():
        i, j = _LATENT.index(a), _LATENT.index(b)
        r[i, j] = r[j, i] = v
    # guard: the hand-written matrix must stay a correlation matrix
    if np.linalg.eigvalsh(r).min() <= 0:
        raise AssertionError("simulate: latent correlation matrix is not positive definite")
    return r


def _from_quartiles(z: np.ndarray, q1: float, med: float, q3: float, log: bool) -> np.ndarray:
    """Split-normal quantile map hitting the three quartiles exactly (in log space when `log`)."""
    f = np.log if log else (lambda x: x)
    lo, m, hi = f(q1), f(med), f(q3)
    q = norm.ppf(0.75)
    y = m + np.where(z < 0, (m - lo) / q, (hi - m) / q) * z
    return np.exp(y) if log else y


def _ordinal(z: np.ndarray, table) -> np.ndarray:
    levels = np.array([lv for lv, _ in table], dtype=object)
    p = np.array([pr for _, pr in table], float)
    cuts = norm.ppf(np.cumsum(p / p.sum())[:-1])
    return levels[np.searchsorted(cuts, z)]


def _simulate_covariates(n: int, rng: np.random.Generator) -> pd.DataFrame:
    z = rng.multivariate_normal(np.zeros(len(_LATENT)), _correlation(), size=n, method="cholesky")
    Z = {name: z[:, i] for i, name in enumerate(_LATENT)}
    cov = {}
    for name, (q1, med, q3, log, (lo, hi), digits) in _QUARTILES.items():
        cov[name] = np.round(np.clip(_from_quartiles(Z[name], q1, med, q3, log), lo, hi), digits)
    cov["afp"] = np.round(np.clip(_AFP_MEDIAN * np.exp(_AFP_SIGMA * Z["afp"]), 0.5, 2_000_000), 1)
    cov["age"] = cov["age"].astype(int)
    cov["plt"] = cov["plt"].astype(int)
    # a high latent means "present", so the correlations above read in their natural direction
    binary = lambda name, p: (Z[name] > norm.ppf(1 - p)).astype(int)  # noqa: E731 - keeps p exact
    cov["comorbidity"] = binary("comorbidity", _P["comorbidity"])
    cov["ascites"] = binary("ascites", _P["ascites"])
    cov["pvtt"] = binary("pvtt", _P["pvtt"])
    cov["metastasis"] = binary("metastasis", _P["metastasis"])
    cov["ecog"] = _ordinal(Z["ecog"], _ECOG).astype(int)
    cov["child_pugh"] = _ordinal(Z["child_pugh"], _CHILD_PUGH).astype(int)
    gt3 = Z["tumour_number"] > norm.ppf(1 - _P["tumour_gt3"])
    cov["tumour_number"] = np.where(gt3, ">3", "<=3").astype(object)
    cov["sex"] = np.where(rng.random(n) < _P["sex_male"], "male", "female").astype(object)
    cov["etiology"] = _ordinal(rng.standard_normal(n), _ETIOLOGY)
    stage_c = (cov["pvtt"] == 1) | (cov["metastasis"] == 1) | (cov["ecog"] >= 1)
    few = ~stage_c & ~gt3
    # share of A among non-C patients with <= 3 nodules, set from this sample so that A is 13 % overall
    p_a = min(1.0, _BCLC_A * n / max(few.sum(), 1))
    stage_a = few & (rng.random(n) < p_a)
    cov["bclc"] = np.where(stage_c, "C", np.where(stage_a, "A", "B")).astype(object)
    return pd.DataFrame({name: cov[name] for name in FIELD_NAMES})


# ---------------------------------------------------------------- therapy and outcomes

def _centres(n: int, n_centres: int, rng: np.random.Generator) -> np.ndarray:
    """Centre labels C1..Ck: C1 gets the study's training-centre share, the rest split evenly."""
    if n_centres == 1:
        return np.full(n, "C1", dtype=object)
    n1 = int(round(FIRST_CENTRE_SHARE * n))
    rest = np.array_split(np.arange(n - n1), n_centres - 1)
    labels = ["C1"] * n1 + [f"C{j + 2}" for j, part in enumerate(rest) for _ in part]
    return rng.permutation(np.array(labels, dtype=object))


def _propensity(cov: pd.DataFrame, centre: np.ndarray, n_centres: int, assignment: str) -> np.ndarray:
    if assignment == "randomized":
        return np.full(len(cov), 0.5)
    c = _PROPENSITY
    shifts = {"C1": 0.0}
    if n_centres > 1:
        shifts.update({f"C{j + 2}": s for j, s in enumerate(np.linspace(-_CENTRE_SHIFT, _CENTRE_SHIFT, n_centres - 1))})
    lin = (c["intercept"] + c["pvtt"] * cov["pvtt"] + c["metastasis"] * cov["metastasis"] + c["gt3"] * _gt3(cov)
           + c["diameter"] * (cov["max_diameter"] - 11.0) + c["afp400"] * (cov["afp"] >= 400)
           + c["cp7"] * (cov["child_pugh"] >= 7) + np.array([shifts[x] for x in centre]))
    return np.clip(expit(lin.to_numpy(float)), *PROPENSITY_BOUNDS)


def _overall_survival(cov: pd.DataFrame, progressed: np.ndarray, rng: np.random.Generator):
    c = _OS
    eta = (c["pvtt"] * cov["pvtt"] + c["metastasis"] * cov["metastasis"] + c["child_pugh"] * (cov["child_pugh"] - 5)
           + c["diameter"] * (cov["max_diameter"] - 11.0) + c["afp400"] * (cov["afp"] >= 400)
           + c["ascites"] * cov["ascites"]).to_numpy(float) + c["pd"] * progressed
    # Weibull: S(t) = exp(-(t/scale)^shape · e^eta)  →  t = scale · (E · e^-eta)^(1/shape), E ~ Exp(1)
    t = c["scale"] * (rng.exponential(size=len(cov)) * np.exp(-eta)) ** (1.0 / c["shape"])
    follow_up = rng.uniform(*_FOLLOW_UP, size=len(cov))
    return np.round(np.minimum(t, follow_up), 2), (t <= follow_up).astype(int)


def simulate_cohort(n: int = 900, seed: int = 0, n_centres: int = 3, assignment: str = "physician",
                    disease_control: tuple[float, float] = STUDY_DISEASE_CONTROL) -> Cohort:
    """Simulate `n` patients in `n_centres` centres with therapy chosen by `assignment`.

    assignment: "physician" (covariate-dependent choice, propensities within [0.1, 0.9]) or
    "randomized" (P(HAIC) = 1/2). ``disease_control`` (TACE, HAIC): the rates the physician choice
    gives (the truth's intercepts are solved for them). The same seed gives the same cohort.
    """
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"simulate_cohort: assignment must be one of {ASSIGNMENTS}, got {assignment!r}")
    if int(n) < 1 or int(n_centres) < 1 or int(n_centres) > int(n):
        raise ValueError(f"simulate_cohort: need n >= 1 and 1 <= n_centres <= n, got n={n}, n_centres={n_centres}")
    n, n_centres = int(n), int(n_centres)
    rng = np.random.default_rng(seed)
    cov = _simulate_covariates(n, rng)
    centre = _centres(n, n_centres, rng)
    disease_control = tuple(float(v) for v in disease_control)
    g, h = true_g_function(cov, disease_control), true_h_function(cov, disease_control)
    p_tace, p_haic = expit(g - h / 2.0), expit(g + h / 2.0)
    propensity = _propensity(cov, centre, n_centres, assignment)
    haic = rng.random(n) < propensity
    therapy = np.where(haic, "HAIC", "TACE").astype(object)
    pd_ = (rng.random(n) < np.where(haic, p_haic, p_tace)).astype(int)
    os_months, os_event = _overall_survival(cov, pd_.astype(float), rng)
    width = max(4, len(str(n)))
    ids = np.array([f"SIM{i + 1:0{width}d}" for i in range(n)], dtype=object)
    return Cohort(patient_id=ids, centre=centre, covariates=cov, therapy=therapy, pd=pd_,
                           os_months=os_months, os_event=os_event, true_g=g, true_h=h, propensity=propensity,
                           true_p_tace=p_tace, true_p_haic=p_haic,
                           info={"n": n, "seed": seed, "n_centres": n_centres, "assignment": assignment,
                                 "disease_control": list(disease_control),
                                 "intercepts": dict(zip(("g0", "h0"), intercepts(disease_control)))})
