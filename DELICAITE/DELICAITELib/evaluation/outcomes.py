"""What following DELICAITE's recommendation does: survival of Maintain vs Alter, the IPW value of the
recommendation against fixed policies and the other rules, and (simulated cohorts) the known truth.

Maintain = the received therapy equals the recommendation; Alter = it is the other therapy. A patient
whose recommendation is "no clear preference" (|h| ≤ the model's cutoff) is in neither: they form a
third group, counted and left out of the Maintain vs Alter comparison (in the policy value they keep the
therapy they received, as stats.policy does).

What the survival comparisons can say:
- Overall, Maintain vs Alter mixes the effect of following the recommendation with who was treated how.
  An adjusted hazard ratio (baseline covariates and the received therapy) separates them only when the
  recommendation varies within each therapy: with every patient recommended HAIC, Maintain is simply
  "received HAIC" and the ratio is not identified. It is given only when every therapy × group cell
  holds at least MIN_CELL patients, else a sentence says why not.
- Within one therapy, Maintain vs Alter compares patients the model sorted differently, so it estimates
  how the model's sorting relates to prognosis, not the effect of following it; the hazard ratio
  adjusted for the baseline prognostic covariates is given with that caveat.
- No p-value is given for a comparison with a group of fewer than MIN_GROUP_FOR_P patients.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ..errors import DelicaiteError
from ..stats import compare_policies, km_groups
from .common import ALTER, MAINTAIN, MIN_CELL, MIN_GROUP_FOR_P, NO_PREFERENCE

ORDER = [MAINTAIN, ALTER]
PROPENSITY_CLIP = (0.01, 0.99)
TRUE_PROPENSITY = "true propensity (simulation)"


def _filled(encoded: pd.DataFrame) -> pd.DataFrame:
    """Encoded covariates with missing values at the column median and constant columns dropped."""
    x = encoded.astype(float)
    x = x.fillna(x.median()).fillna(0.0)
    return x.loc[:, x.std() > 0]


def adjusted_cox(frame: pd.DataFrame, encoded: pd.DataFrame, with_therapy: bool = True) -> dict:
    """Hazard ratio of Maintain vs Alter adjusted for the covariates (and the received therapy, unless
    ``with_therapy`` is False: within one therapy it is constant) — lifelines CoxPHFitter, small ridge
    penalty 0.01 for stability."""
    m = frame["group"].isin(ORDER).to_numpy()
    d = _filled(encoded[m]).reset_index(drop=True)
    if with_therapy:
        d["haic"] = (frame.loc[m, "therapy"] == "HAIC").to_numpy(float)
    d["maintain"] = (frame.loc[m, "group"] == MAINTAIN).to_numpy(float)
    d = d.loc[:, d.std() > 0]
    if "maintain" not in d:
        return {"note": "everyone is in one group: no hazard ratio"}
    d["time"], d["event"] = frame.loc[m, "os_months"].to_numpy(float), frame.loc[m, "os_event"].to_numpy(float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = CoxPHFitter(penalizer=0.01).fit(d, "time", "event")
    except Exception as err:  # lifelines raises several convergence errors; the report notes any of them
        return {"note": f"adjusted Cox model not fitted: {err}"}
    row = fit.summary.loc["maintain"]
    counts = frame.loc[m, "group"].value_counts()
    smallest = int(min(counts.get(MAINTAIN, 0), counts.get(ALTER, 0)))
    return {"hr": float(row["exp(coef)"]), "lo": float(row["exp(coef) lower 95%"]),
            "hi": float(row["exp(coef) upper 95%"]), "p": float(row["p"]) if smallest >= MIN_GROUP_FOR_P else None,
            "n": int(m.sum()),
            "adjusted_for": f"{d.shape[1] - 3} baseline covariates" + (" and the received therapy" if with_therapy else "")}


def _km(frame: pd.DataFrame) -> dict:
    m = frame["group"].isin(ORDER).to_numpy()
    if not m.any():
        return {"groups": {}, "logrank_p": float("nan"), "test": "", "note": "no patient in Maintain or Alter"}
    out = km_groups(frame.loc[m, "os_months"], frame.loc[m, "os_event"], frame.loc[m, "group"], order=ORDER)
    out.pop("pairwise", None)
    if len(out["groups"]) < 2:
        out["note"] = "only one group here: no log-rank test"
    elif min(g["n"] for g in out["groups"].values()) < MIN_GROUP_FOR_P:
        out["logrank_p"] = float("nan")
        out["note"] = f"a group has fewer than {MIN_GROUP_FOR_P} patients: no p-value"
    return out


def _cells(frame: pd.DataFrame) -> dict:
    return {therapy: {group: int(((frame["therapy"] == therapy) & (frame["group"] == group)).sum())
                      for group in ORDER} for therapy in ("TACE", "HAIC")}


def survival_section(frame: pd.DataFrame, encoded: pd.DataFrame) -> dict:
    """OS of Maintain vs Alter overall, within TACE and within HAIC (Kaplan–Meier, median with CI, log-rank),
    the group sizes (no clear preference included), the therapy × group cells, the adjusted hazard ratio
    where the cells identify it, and within each therapy the hazard ratio adjusted for prognosis."""
    counts = {g: int((frame["group"] == g).sum()) for g in (MAINTAIN, ALTER, NO_PREFERENCE)}
    cells = _cells(frame)
    out = {"counts": counts, "cells": cells, "overall": _km(frame)}
    for therapy in ("TACE", "HAIC"):
        out[therapy] = _km(frame[frame["therapy"] == therapy])
    small = [f"{therapy} {group} {n}" for therapy, groups in cells.items() for group, n in groups.items() if n < MIN_CELL]
    if small:
        out["adjusted_cox"] = {"note": (f"not identifiable: the recommendation does not vary enough within each therapy "
                                        f"(cells below {MIN_CELL} patients: {', '.join(small)}), so Maintain vs Alter "
                                        "cannot be told apart from the therapy received; no hazard ratio is given")}
    else:
        out["adjusted_cox"] = adjusted_cox(frame, encoded)
    for therapy in ("TACE", "HAIC"):
        rows = (frame["therapy"] == therapy).to_numpy()
        if min(cells[therapy].values()) < MIN_CELL:
            out[f"adjusted_within_{therapy}"] = {"note": f"fewer than {MIN_CELL} patients in Maintain or Alter within "
                                                         f"{therapy}: no hazard ratio"}
        else:
            out[f"adjusted_within_{therapy}"] = adjusted_cox(frame[rows], encoded[rows], with_therapy=False)
    return out


def fitted_propensity(frame: pd.DataFrame, encoded: pd.DataFrame) -> np.ndarray:
    """P(HAIC | x) from an L2-regularised logistic regression on the standardised covariates (and the
    centre, where there are several), clipped to PROPENSITY_CLIP."""
    x = _filled(encoded)
    if frame["centre"].nunique() > 1:
        x = pd.concat([x.reset_index(drop=True),
                       pd.get_dummies(frame["centre"].reset_index(drop=True), prefix="centre", drop_first=True,
                                      dtype=float)], axis=1)
    a = (frame["therapy"] == "HAIC").to_numpy(int)
    if a.min() == a.max():
        raise DelicaiteError("every patient of this set received the same therapy: no propensity")
    xs = StandardScaler().fit_transform(x)
    model = LogisticRegression(C=1.0, max_iter=2000).fit(xs, a)
    return np.clip(model.predict_proba(xs)[:, 1], *PROPENSITY_CLIP)


def policy_section(frame: pd.DataFrame, encoded: pd.DataFrame, n_boot: int, seed: int,
                   rules: dict[str, str] | None = None) -> dict:
    """IPW disease-control rate of following the recommendation vs all TACE, all HAIC, as treated and the
    other rules (``rules``: policy name → column of ``frame`` holding its recommendation), each with the
    paired difference recommended minus it."""
    m = frame["pd"].notna().to_numpy()
    f, e = frame[m], encoded[m]
    if f["therapy"].nunique() < 2:
        return {"note": "one therapy only: the policies cannot be compared"}
    if "propensity" in f and f["propensity"].notna().all():
        propensity, source = f["propensity"].to_numpy(float), TRUE_PROPENSITY
    else:
        propensity = fitted_propensity(f, e)
        source = (f"fitted: L2-regularised logistic regression of HAIC on the covariates{' and centre' if f['centre'].nunique() > 1 else ''} "
                  f"within this set, clipped to [{PROPENSITY_CLIP[0]}, {PROPENSITY_CLIP[1]}]")
    others = {name: f[column].to_numpy(str) for name, column in (rules or {}).items()}
    policies = compare_policies(1 - f["pd"].to_numpy(int), f["therapy"].to_numpy(str),
                                f["recommendation"].to_numpy(str), propensity, n_boot=n_boot, seed=seed, others=others)
    return {"n": int(m.sum()), "propensity": source, "policies": policies}


def truth_section(frame: pd.DataFrame, rules: dict[str, str] | None = None) -> dict:
    """Against the simulation's truth: Spearman's correlation of the estimated h with the true h, the
    mean bias of h (ĥ − h, logit scale), agreement with the oracle, the share recommended HAIC beside the
    true share, and the true disease-control rate of each policy (DELICAITE's, the fixed ones, the oracle
    and the other ``rules``: name → column of recommendations, with ``h_<column>`` where the rule has an h)."""
    rho, p = spearmanr(frame["h"], frame["true_h"])
    rec, oracle = frame["recommendation"].to_numpy(str), frame["oracle_best"].to_numpy(str)
    preference = rec != NO_PREFERENCE
    out = {"n": int(len(frame)), "spearman": float(rho), "spearman_p": float(p),
           "bias_h": float(np.mean(frame["h"] - frame["true_h"])),
           "oracle_agreement": float((rec[preference] == oracle[preference]).mean()) if preference.any() else float("nan"),
           "n_with_preference": int(preference.sum()),
           "share_recommended_haic": float((rec == "HAIC").mean()), "share_oracle_haic": float((oracle == "HAIC").mean())}
    if {"h_lo", "h_hi"} <= set(frame.columns):  # how often the ensemble spread holds the true h (not a CI)
        lo, hi, true_h = (frame[c].to_numpy(float) for c in ("h_lo", "h_hi", "true_h"))
        out["spread_coverage"] = float(np.mean((true_h >= lo) & (true_h <= hi)))
        out["spread_median_width"] = float(np.median(hi - lo))
    if {"true_p_tace", "true_p_haic"} <= set(frame.columns):
        p_t, p_h = frame["true_p_tace"].to_numpy(float), frame["true_p_haic"].to_numpy(float)
        received = np.where(frame["therapy"] == "HAIC", p_h, p_t)

        def true_value(recommended: np.ndarray) -> float:
            return float(1 - np.where(recommended == "HAIC", p_h, np.where(recommended == "TACE", p_t, received)).mean())

        out["true_value"] = {"recommended": true_value(rec), "all TACE": float(1 - p_t.mean()),
                             "all HAIC": float(1 - p_h.mean()), "as treated": float(1 - received.mean()),
                             "oracle": float(1 - np.minimum(p_t, p_h).mean())}
        out["rules"] = {}
        for name, column in (rules or {}).items():
            recommended = frame[column].to_numpy(str)
            entry = {"true_value": true_value(recommended), "share_haic": float((recommended == "HAIC").mean()),
                     "oracle_agreement": float((recommended == oracle).mean())}
            if f"h_{column}" in frame:
                h = frame[f"h_{column}"].to_numpy(float)
                entry.update(spearman=float(spearmanr(h, frame["true_h"])[0]), bias_h=float(np.mean(h - frame["true_h"])))
            out["rules"][name] = entry
            out["true_value"][name] = entry["true_value"]
    return out
