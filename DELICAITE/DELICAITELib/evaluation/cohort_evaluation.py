"""Everything `delicaite cohort evaluate` reports, computed into one dict (per set × model).

`patient_frame` joins the cohort, the splits and every model's prediction (one row per patient);
`evaluate_cohort` computes the study's statistics from it (PAPER.md, "Reported results"):
Table 1 between sets and between therapies, Table 2 (logistic regression for PD on the training set),
Table 3 (AUC with a stratified bootstrap CI, metrics at the threshold fixed on training), DeLong tests,
calibration, Maintain vs Alter survival, IPW policy values and, for a simulated cohort, the truth.
Patients with unknown PD are left out of the PD statistics and kept in the survival ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from ..clinical import encode, encoded_columns
from ..clinical.schema import SCHEMA
from ..cohort import Cohort, design_frame
from ..cohort.trained import DELICAITE, TrainedModels
from ..errors import DelicaiteError
from ..stats import (bootstrap_auc_ci, calibration, confusion_counts, delong_test, logistic_table, table1,
                     threshold_metrics_ci)
from ..recommendation import group
from .baselines import BASELINE_TEXT, fit_baselines
from .common import ALL, ALL_TEST, MIN_CELL, MIN_GROUP_FOR_P, SETS, TEST_SETS
from .outcomes import policy_section, survival_section, truth_section

LOGISTIC_ALPHA = "p<0.1"  # univariate p below which a variable enters the multivariate model


def patient_frame(cohort: Cohort, trained: TrainedModels, features=None) -> pd.DataFrame:
    """One row per patient: ids, set, therapy, outcomes, p_<model> (P(PD | x, received therapy)), h with its
    interval, the recommendation, the Maintain/Alter group and (simulated cohorts) the truth."""
    frame = design_frame(cohort, features)
    sets = trained.splits.set_index(trained.splits["patient_id"].astype(str))["set"]
    frame.insert(2, "set", frame["patient_id"].map(sets))
    unknown = frame["set"].isna()
    if unknown.all():
        raise DelicaiteError("no patient of this cohort is in the model's splits.csv; evaluate the cohort the model "
                             "was trained on (patient_id values differ)")
    frame = frame[~unknown].reset_index(drop=True)
    frame.attrs["n_not_in_splits"] = int(unknown.sum())
    predictions = trained.bundle.predictions(frame)  # DELICAITE: one pass through the ensemble
    frame[f"p_{DELICAITE}"] = predictions["p_pd_received"].to_numpy()
    for name in trained.comparators:
        frame[f"p_{name}"] = trained.predict_pd(name, frame)
        # the comparator's own rule: the therapy it predicts the lower PD risk for
        p_haic, p_tace = (trained.predict_pd(name, frame.assign(therapy=t)) for t in ("HAIC", "TACE"))
        frame[f"rec_{name}"] = np.where(p_haic < p_tace, "HAIC", "TACE")
    frame["h"], frame["h_lo"], frame["h_hi"] = (predictions[c].to_numpy() for c in ("h", "h_lower", "h_upper"))
    frame["recommendation"] = predictions["recommendation"].to_numpy()
    frame["group"] = group(frame["therapy"].to_numpy(), frame["recommendation"].to_numpy())
    keep = ~unknown.to_numpy()
    for name in ("true_h", "propensity", "true_p_tace", "true_p_haic"):
        value = getattr(cohort, name)
        if value is not None:
            frame[name] = np.asarray(value, dtype=float)[keep]
    if cohort.true_h is not None:
        frame["oracle_best"] = np.asarray(cohort.oracle_best)[keep]
    return frame


def covariate_table(cohort: Cohort, frame: pd.DataFrame) -> pd.DataFrame:
    """The covariates in schema units (as the paper's tables show them), aligned with `frame`'s rows."""
    cov = cohort.covariates.copy()
    cov.insert(0, "patient_id", np.asarray(cohort.patient_id, dtype=str))
    cov = cov.set_index("patient_id").loc[frame["patient_id"]].reset_index()
    return cov[["patient_id", *[c for c in SCHEMA if c in cov and cov[c].notna().any()]]]


def subsets(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Boolean masks of the three sets (those present) and of all patients."""
    out = {s: (frame["set"] == s).to_numpy() for s in SETS if (frame["set"] == s).any()}
    out[ALL] = np.ones(len(frame), bool)
    return out


def outcome_subsets(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The sets of the survival, policy and truth sections: each set, and the test sets pooled (the
    training set is in-sample, so it stays out of the pooled figures)."""
    out = {s: (frame["set"] == s).to_numpy() for s in SETS if (frame["set"] == s).any()}
    test = frame["set"].isin(TEST_SETS).to_numpy()
    if sum(s in out for s in TEST_SETS) > 1:
        out[ALL_TEST] = test
    return out


def add_rules(frame: pd.DataFrame, trained: TrainedModels) -> tuple[dict[str, str], dict[str, str]]:
    """The other rules the policy and truth sections compare with: the simple baselines fitted on the
    training set (baselines.py) and each comparator's own rule. Returns ({policy name: column of frame
    holding its recommendations}, {policy name: what it is})."""
    rules, described = {}, {}
    for name, table in fit_baselines(frame, (frame["set"] == "training").to_numpy()).items():
        column = "rec_" + name.replace(" ", "_")
        frame[column] = table["recommendation"].to_numpy()
        if "h" in table:
            frame[f"h_{column}"] = table["h"].to_numpy()
        rules[name], described[name] = column, table.attrs.get("rule", BASELINE_TEXT.get(name, name))
    for name in trained.comparators:
        rules[f"{name} rule"] = f"rec_{name}"
        described[f"{name} rule"] = f"the therapy {name} predicts the lower PD risk for"
    return rules, described


# ------------------------------------------------------------------ Tables 1 and 2

def baseline_tables(cov: pd.DataFrame, frame: pd.DataFrame) -> dict:
    """Table 1 between the sets and between the therapies, and the disease control rate per set × therapy."""
    df = cov.drop(columns="patient_id").assign(set=frame["set"].to_numpy(), therapy=frame["therapy"].to_numpy())
    variables = [c for c in cov.columns if c != "patient_id"]
    sets = [s for s in SETS if (df["set"] == s).any()]
    by_set = table1(df, "set", variables=["therapy", *variables], groups=sets)
    by_therapy = table1(df, "therapy", variables=variables, groups=["TACE", "HAIC"])
    dcr = []
    for s in [*sets, ALL]:
        for therapy in ("TACE", "HAIC"):
            m = (frame["therapy"] == therapy) & frame["pd"].notna() & ((frame["set"] == s) | (s == ALL))
            n = int(m.sum())
            controlled = int((frame.loc[m, "pd"] == 0).sum())
            dcr.append({"set": s, "therapy": therapy, "n": n, "controlled": controlled,
                        "rate": controlled / n if n else float("nan")})
    return {"by_set": by_set, "by_therapy": by_therapy, "disease_control": dcr}


def logistic_section(cov: pd.DataFrame, frame: pd.DataFrame) -> dict:
    """Table 2: uni- and multivariate logistic regression for PD on the training set (AFP as ≥ 400)."""
    m = ((frame["set"] == "training") & frame["pd"].notna()).to_numpy()
    return logistic_for_pd(cov[m], frame.loc[m, "pd"].to_numpy(float))


def logistic_for_pd(cov: pd.DataFrame, pd_outcome: np.ndarray) -> dict:
    """Uni/multivariate logistic table for PD; separated variables are skipped with a note, and a
    multivariate model that cannot be fitted is reported as such rather than stopping the report."""
    df = cov.drop(columns="patient_id").reset_index(drop=True)
    if "afp" in df:
        df["afp_ge_400"] = encode(cov.reset_index(drop=True))["afp_ge_400"].to_numpy()
        df = df.drop(columns="afp")
    df["pd"] = pd_outcome
    variables = [c for c in df.columns if c != "pd" and df[c].notna().any() and df[c].dropna().nunique() > 1]
    notes = []
    try:
        table = logistic_table(df, "pd", variables, multivariate=LOGISTIC_ALPHA, on_separation="skip")
    except DelicaiteError as err:
        table = logistic_table(df, "pd", variables, on_separation="skip")
        notes.append(f"multivariate model not fitted: {err}")
    # the library's note tells a programmer what to do; the report states the finding
    table["note"] = table["note"].fillna("").astype(str).str.replace(r"; the odds ratio is infinite.*$",
                                                                      "; odds ratio infinite, not estimable", regex=True)
    skipped = sorted(set(table.loc[table["note"] != "", "variable"]))
    if skipped:
        notes.append(f"not estimable (shown without an odds ratio): {', '.join(skipped)}")
    if not table.attrs.get("multivariate"):
        notes.append(f"no variable had a univariate {LOGISTIC_ALPHA.replace('p<', 'p < ')}: no multivariate model")
    table.attrs["notes"] = notes
    return {"n": int(len(df)), "n_pd": int(np.nansum(pd_outcome)), "selection": LOGISTIC_ALPHA, "table": table}


# ------------------------------------------------------------------ Table 3, DeLong, calibration

def delong_tests(y, scores: dict[str, np.ndarray], reference: str = DELICAITE) -> dict:
    """Paired DeLong test of the reference model's AUC against every other model's, on the same patients."""
    return {name: delong_test(y, scores[reference], s).as_dict() for name, s in scores.items() if name != reference}


def classification_section(frame: pd.DataFrame, names: list[str], thresholds: dict[str, float], n_boot: int,
                           seed: int, scheme: str = "stratified") -> dict:
    """Per set and model: AUC (stratified bootstrap CI) and metrics at the training threshold (bootstrap
    ``scheme``: stratified or patient); DeLong; calibration."""
    table3, delong, calib = {}, {}, {}
    for k, s in enumerate(SETS):
        m = ((frame["set"] == s) & frame["pd"].notna()).to_numpy()
        if not m.any():
            continue
        y = frame.loc[m, "pd"].to_numpy(int)
        if y.min() == y.max():
            table3[s] = {"note": f"only one outcome class among the {int(m.sum())} patients: no AUC"}
            continue
        scores = {n: frame.loc[m, f"p_{n}"].to_numpy(float) for n in names}
        table3[s], calib[s] = {}, {}
        for j, name in enumerate(names):
            p, t = scores[name], float(thresholds[name])
            auc = bootstrap_auc_ci(y, p, n_boot=n_boot, seed=seed + 100 * k + j)
            metrics = threshold_metrics_ci(y, p, t, n_boot=n_boot, seed=seed + 100 * k + j, scheme=scheme)
            table3[s][name] = {"n": int(m.sum()), "n_pd": int(y.sum()), "threshold": t, "auc": list(auc),
                               **{key: list(v) for key, v in metrics.items()}, "counts": confusion_counts(y, p, t)}
            with warnings.catch_warnings():  # a training-set fit that separates PD shows as a steep slope
                warnings.simplefilter("ignore", PerfectSeparationWarning)
                cal = calibration(y, p, n_bins=10)
            calib[s][name] = {"brier": cal["brier"], "intercept": cal["intercept"], "slope": cal["slope"],
                              "bins": cal["bins"].to_dict(orient="list")}
        delong[s] = delong_tests(y, scores)
    return {"table3": table3, "delong": delong, "calibration": calib}


# ------------------------------------------------------------------ everything

def evaluate_cohort(cohort: Cohort, trained: TrainedModels, features=None, n_boot: int = 2000, seed: int = 0,
                    progress: Callable[[str], None] | None = None,
                    metric_bootstrap: str = "stratified") -> tuple[dict, pd.DataFrame]:
    """(results, per-patient frame). results holds every number of the report (see the module docstring)."""
    say = progress or (lambda _msg: None)
    frame = patient_frame(cohort, trained, features)
    cov = covariate_table(cohort, frame)
    names = list(trained.names)
    simulated = cohort.true_h is not None
    results = {
        "kind": "two-therapy cohort",
        "meta": {"note": trained.bundle.note, "simulated": simulated, "n_boot": int(n_boot), "seed": int(seed),
                 "models": names, "model_inputs": {n: trained.summary.get("models", {}).get(n, {}).get("inputs", "")
                                                   for n in names},
                 "thresholds": {n: float(trained.thresholds[n]) for n in names},
                 "threshold_rule": trained.summary.get("thresholds", {}).get("rule", "fixed on the training set"),
                 "splits_rule": trained.summary.get("splits", {}).get("rule", ""),
                 "n": {s: int(m.sum()) for s, m in subsets(frame).items()},
                 "n_unknown_pd": int(frame["pd"].isna().sum()),
                 "n_not_in_splits": frame.attrs["n_not_in_splits"],
                 "cutoff": trained.bundle.cutoff, "metric_bootstrap": metric_bootstrap,
                 "min_group_for_p": MIN_GROUP_FOR_P, "min_cell": MIN_CELL},
    }
    say("Table 1 and Table 2")
    results["table1"] = baseline_tables(cov, frame)
    results["table2"] = logistic_section(cov, frame)
    say(f"Table 3, DeLong and calibration ({n_boot} bootstrap replicates)")
    results.update(classification_section(frame, names, trained.thresholds, n_boot, seed, metric_bootstrap))
    say("simple rules on the training set, survival (Maintain vs Alter) and policy values")
    rules, results["rules"] = add_rules(frame, trained)
    masks = outcome_subsets(frame)
    results["recommendations"] = {s: {"recommended": frame.loc[m, "recommendation"].value_counts().to_dict(),
                                      "groups": frame.loc[m, "group"].value_counts().to_dict()}
                                  for s, m in masks.items()}
    encoded = frame[encoded_columns()]
    results["survival"] = {s: survival_section(frame[m], encoded[m]) for s, m in masks.items()}
    results["policy"] = {s: policy_section(frame[m], encoded[m], n_boot, seed, rules) for s, m in masks.items()}
    if simulated:
        results["truth"] = {s: truth_section(frame[m], rules) for s, m in masks.items()}
    return results, frame
