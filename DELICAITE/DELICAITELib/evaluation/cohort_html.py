"""The two-therapy cohort report (report.html), rendered from results.json's content.

Sections follow PAPER.md: Table 1 (sets, therapies), Table 2 (logistic, training), Table 3 (AUC and
threshold metrics per set and model) with ROC curves, DeLong tests, calibration, Maintain vs Alter
survival, the IPW policy values and, for a simulation, the truth panel.
"""

from __future__ import annotations

from pathlib import Path

from ..recommendation import SPREAD_MEANING, SPREAD_NAME
from .common import ALL, ALTER, IN_SAMPLE, MAINTAIN, NO_PREFERENCE, SETS, fmt, fmt_ci, fmt_p, num
from .html import KM_HEADER, caption, esc, figure, km_rows, logistic_html, page, set_label, table, table1_html

METRIC_NAMES = [("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE"), ("ppv", "PPV"), ("npv", "NPV"), ("f1", "F1")]
POLICY_ORDER = ["recommended", "all TACE", "all HAIC", "as treated"]
DEGENERATE = ("An interval of zero width (lower = upper) means every bootstrap replicate gave the same value: the "
              "scores are constant or separate the outcomes perfectly in that set, so the resampling cannot vary it; "
              "it is not a sign of precision.")


def performance_label(s: str) -> str:
    """Set names of the model-performance tables: the training set is marked in-sample."""
    return IN_SAMPLE if s == "training" else set_label(s)


def _degenerate(*triples) -> bool:
    return any(t is not None and not any(x is None for x in t) and num(t[1]) == num(t[2]) for t in triples)


def _overview(r: dict) -> str:
    m = r["meta"]
    rows = [[set_label(s), m["n"][s]] for s in [*SETS, ALL] if s in m["n"]]
    models = [[name, m["model_inputs"].get(name) or "", fmt(m["thresholds"][name])] for name in m["models"]]
    return ("<h2>Cohort, splits and models</h2>" + table(["Set", "Patients"], rows) +
            caption(f"Split rule: {m['splits_rule']}. Patients with unknown PD: {m['n_unknown_pd']} (left out of the "
                    "PD statistics, kept in survival)." + (f" Patients not in the model's splits (left out): {m['n_not_in_splits']}."
                                          if m["n_not_in_splits"] else "")) +
            table(["Model", "Inputs", "Threshold (P(PD) ≥ t is called PD)"], models, numeric_from=2) +
            caption(f"Thresholds: {m['threshold_rule']}; never re-tuned on the test sets. Bootstrap: {m['n_boot']} "
                    f"replicates, seed {m['seed']}: stratified by outcome for the AUC (every replicate keeps both classes), "
                    f"{m.get('metric_bootstrap', 'stratified')} for ACC to F1 (stratified holds the prevalence fixed, which "
                    "narrows the PPV and NPV intervals; `cohort evaluate --metric-bootstrap patient` resamples patients); "
                    "patients resampled for the policy values, paired across policies. In-sample rows (the training set, "
                    "on which the models were fitted) are marked and kept out of the pooled survival and policy figures. "
                    f"No p-value is given for a group of fewer than {m.get('min_group_for_p', 10)} patients."))


def _tables_1_2(r: dict) -> str:
    t1 = r["table1"]
    dcr = [[set_label(d["set"]), d["therapy"], d["n"], d["controlled"], f"{100 * num(d['rate']):.1f} %" if d["n"] else "–"]
           for d in t1["disease_control"]]
    return ("<h2>Table 1. Baseline characteristics</h2><h3>By set</h3>" +
            table1_html(t1["by_set"], {s: set_label(s) for s in SETS}) +
            caption("Median (IQR) or n (%). Kruskal–Wallis test (three sets) for continuous variables, χ² or Fisher "
                    "exact test for categorical ones; missing values in their own row.") +
            "<h3>By therapy (all patients)</h3>" + table1_html(t1["by_therapy"]) +
            caption("Median (IQR) or n (%). Wilcoxon rank-sum test for continuous variables, χ² or Fisher exact test "
                    "for categorical ones.") +
            "<h3>Disease control rate by set and therapy</h3>" +
            table(["Set", "Therapy", "n (known response)", "Disease control", "Rate"], dcr, numeric_from=2) +
            "<h2>Table 2. Logistic regression for PD (training set)</h2>" + logistic_html(r["table2"]))


def _table3(r: dict, figures: dict, out_dir: Path) -> str:
    rows = []
    for s in SETS:
        t = r["table3"].get(s)
        if t is None:
            continue
        if "note" in t:
            rows.append([performance_label(s), t["note"], "", "", *[""] * len(METRIC_NAMES)])
            continue
        for name, v in t.items():
            rows.append([performance_label(s), name, f"{v['n']} ({v['n_pd']})", fmt_ci(v["auc"]),
                         *[fmt_ci(v[k]) for k, _ in METRIC_NAMES]])
    degenerate = any(_degenerate(v["auc"], *[v[k] for k, _ in METRIC_NAMES])
                     for t in r["table3"].values() if "note" not in t for v in t.values())
    scheme = r["meta"].get("metric_bootstrap", "stratified")
    return ("<h2>Table 3. PD prediction per model and set</h2>" +
            table(["Set", "Model", "n (PD)", "AUC (95% CI)", *[lab for _, lab in METRIC_NAMES]], rows, numeric_from=2) +
            caption(f"AUC of P(PD | x, received therapy) with a stratified percentile bootstrap 95 % CI; ACC, SEN, SPE, "
                    f"PPV, NPV and F1 at each model's threshold fixed on the training set, with {scheme} bootstrap CIs. "
                    "Training rows are in-sample: they measure fit, not performance." + (" " + DEGENERATE if degenerate else "")) +
            "<h3>ROC curves</h3>" + figure(out_dir, figures["roc"], "ROC curves per set",
                                           "ROC curves of every model on each set; the AUCs are those of Table 3."))


def _delong(r: dict) -> str:
    rows = []
    for s in SETS:
        for name, d in r["delong"].get(s, {}).items():
            rows.append([performance_label(s), f"delicaite vs {name}", fmt(d["auc_a"]), fmt(d["auc_b"]), fmt(d["difference"]),
                         fmt(d["se"]), fmt(d["z"], 2), fmt_p(d["p"])])
    return ("<h2>DeLong tests: DELICAITE vs each comparator</h2>" +
            table(["Set", "Comparison", "AUC DELICAITE", "AUC comparator", "Difference", "SE", "z", "p"], rows,
                  numeric_from=2) +
            caption("Paired two-sided DeLong test of equal AUCs on the same patients of each set (fast DeLong, "
                    "Sun & Xu 2014). On the in-sample training set a model that memorised its patients wins by "
                    "construction: read the test sets."))


def _calibration(r: dict, figures: dict, out_dir: Path) -> str:
    rows = [[performance_label(s), name, fmt(c["brier"]), fmt(c["intercept"]), fmt(c["slope"])]
            for s in SETS for name, c in r["calibration"].get(s, {}).items()]
    return ("<h2>Calibration</h2>" + table(["Set", "Model", "Brier score", "Calibration intercept", "Calibration slope"],
                                           rows, numeric_from=2) +
            caption("Brier score (lower is better); intercept: calibration-in-the-large (0 ideal); slope of a logistic "
                    "recalibration on logit(p) (1 ideal, < 1 predictions too extreme).") +
            figure(out_dir, figures["calibration"], "calibration plots",
                   "Observed PD rate against the mean predicted risk in deciles of predicted risk."))


def _cox_text(cox: dict, what: str) -> str:
    if "hr" not in cox:
        return f"{what}: {cox.get('note', 'not estimated')}."
    p = "" if cox.get("p") is None else f", p {fmt_p(cox['p'])}"
    return f"{what}: HR {fmt_ci((cox['hr'], cox['lo'], cox['hi']), 2)}{p} ({cox['adjusted_for']})."


def _survival(r: dict, figures: dict, out_dir: Path) -> str:
    cutoff = fmt(r["meta"]["cutoff"])
    parts = ["<h2>Overall survival: Maintain vs Alter (Kaplan–Meier)</h2>",
             caption(f"{MAINTAIN}: the received therapy equals DELICAITE's recommendation; {ALTER}: it is the other "
                     f"therapy. {NO_PREFERENCE} (|h| ≤ cutoff {cutoff}) is a third group, counted below and left out of "
                     "the comparison. Median OS with the 95 % CI from the Kaplan–Meier band (NR: not reached); log-rank "
                     "test. Physicians chose the therapy, so the unadjusted comparison mixes the effect of following the "
                     "recommendation with who received which therapy. The Cox hazard ratio of Maintain vs Alter adjusted "
                     "for the baseline covariates and the received therapy is given only where the recommendation varies "
                     f"within each therapy (every therapy × group cell at least {r['meta'].get('min_cell', 10)} patients); "
                     "otherwise Maintain is just the therapy received and no ratio is identified. Within one therapy, "
                     "Maintain vs Alter compares patients the model sorted differently: the hazard ratio adjusted for "
                     "baseline prognosis estimates how that sorting relates to survival beyond the covariates, not the "
                     "effect of following the recommendation.")]
    for s, sv in r["survival"].items():
        rows = km_rows(sv["overall"], "Overall") + km_rows(sv["TACE"], "Within TACE") + km_rows(sv["HAIC"], "Within HAIC")
        c, cells = sv["counts"], sv["cells"]
        cell_text = "; ".join(f"{therapy}: {MAINTAIN} {g[MAINTAIN]}, {ALTER} {g[ALTER]}" for therapy, g in cells.items())
        texts = [f"{MAINTAIN} {c[MAINTAIN]}, {ALTER} {c[ALTER]}, {NO_PREFERENCE} {c[NO_PREFERENCE]} ({cell_text}).",
                 _cox_text(sv["adjusted_cox"], "Adjusted Cox, Maintain vs Alter"),
                 _cox_text(sv["adjusted_within_TACE"], "Within TACE, adjusted for prognosis"),
                 _cox_text(sv["adjusted_within_HAIC"], "Within HAIC, adjusted for prognosis")]
        texts += [km["note"] + "." for km in (sv["overall"], sv["TACE"], sv["HAIC"]) if km.get("note")]
        heading = performance_label(s) if s == "training" else set_label(s)
        parts += [f"<h3>{esc(heading)}</h3>", table(KM_HEADER, rows, numeric_from=2), caption(" ".join(texts)),
                  figure(out_dir, figures[f"km_{s}"], f"Kaplan–Meier Maintain vs Alter, {set_label(s)}")]
    return "".join(parts)


def _policy(r: dict) -> str:
    truth = r.get("truth", {})
    parts = ["<h2>Policy value: following the recommendation</h2>"]
    for s, pv in r["policy"].items():
        if "note" in pv:
            parts.append(caption(f"{set_label(s)}: {pv['note']}"))
            continue
        true_value = truth.get(s, {}).get("true_value")
        header = ["Policy", "Disease control rate (95% CI)", "Patients following it",
                  "Recommended minus this (paired 95% CI)"] + (["True value (simulation)"] if true_value else [])
        names = [*POLICY_ORDER, *[n for n in pv["policies"] if n not in POLICY_ORDER]]
        rows = []
        for name in names:
            v = pv["policies"][name]
            d = v.get("difference")
            rows.append([name, fmt_ci((v["value"], v["lo"], v["hi"])), v["n_followed"],
                         "" if d is None else fmt_ci((d["value"], d["lo"], d["hi"]))]
                        + ([fmt(true_value.get(name))] if true_value else []))
        heading = performance_label(s) if s == "training" else set_label(s)
        parts += [f"<h3>{esc(heading)} (n = {pv['n']})</h3>", table(header, rows, numeric_from=1),
                  caption(f"IPW (Hájek) estimate of the disease-control rate if every patient were treated by the policy, "
                          f"percentile bootstrap 95 % CI over patients; the difference column compares the recommendation "
                          f"with each policy on the same resamples (paired). As treated: the observed rate. Propensity "
                          f"P(HAIC | x): {pv['propensity']}. {NO_PREFERENCE} keeps the received therapy. The other rules: "
                          + "; ".join(f"{name}: {text}" for name, text in r.get("rules", {}).items()) + ".")]
    return "".join(parts)


def _truth(r: dict, figures: dict, out_dir: Path) -> str:
    rows = [[set_label(s), t["n"], fmt(t["spearman"]), fmt(t.get("bias_h")), fmt(t["oracle_agreement"]),
             f"{100 * num(t['share_recommended_haic']):.1f} %", f"{100 * num(t['share_oracle_haic']):.1f} %",
             fmt(t.get("true_value", {}).get("recommended")), fmt(t.get("true_value", {}).get("oracle")),
             "" if t.get("spread_coverage") is None else f"{100 * num(t['spread_coverage']):.0f} %"]
            for s, t in r["truth"].items()]
    rule_rows = [[set_label(s), name, fmt(e.get("spearman")), fmt(e.get("bias_h")), fmt(e["oracle_agreement"]),
                  f"{100 * num(e['share_haic']):.1f} %", fmt(e["true_value"]),
                  fmt(num(t["true_value"]["recommended"]) - num(e["true_value"]), 4)]
                 for s, t in r["truth"].items() for name, e in t.get("rules", {}).items()]
    fixed = [[set_label(s), name, fmt(t["true_value"][name]),
              fmt(num(t["true_value"]["recommended"]) - num(t["true_value"][name]), 4)]
             for s, t in r["truth"].items() if "true_value" in t for name in ("all TACE", "all HAIC", "as treated")]
    return ("<h2>Truth panel (simulated cohort)</h2>" +
            table(["Set", "n", "Spearman ρ (h, true h)", "Mean bias of h", "Oracle agreement", "HAIC recommended",
                   "HAIC best (truth)", "True value of DELICAITE's rule", "Oracle policy value",
                   f"True h inside the {SPREAD_NAME}"], rows, numeric_from=1) +
            caption("The simulation knows each patient's true interaction h and best therapy. Spearman ρ between the "
                    "estimated and the true h; mean bias: the mean of estimated minus true h (logit scale; negative "
                    "means HAIC's benefit is overstated); oracle agreement: share of patients with a preference whose "
                    "recommended therapy is the truly better one; true value: the disease-control rate the simulation "
                    "gives if every patient received the therapy the rule names. The last column: the share of patients whose "
                    f"true h lies inside the {SPREAD_NAME} of their estimate ({SPREAD_MEANING}).") +
            "<h3>Against the simple rules</h3>" +
            table(["Set", "Rule", "Spearman ρ", "Mean bias of h", "Oracle agreement", "HAIC recommended", "True value",
                   "DELICAITE minus rule"], rule_rows, numeric_from=2) +
            table(["Set", "Fixed policy", "True value", "DELICAITE minus policy"], fixed, numeric_from=2) +
            caption("Every rule was fitted on the training set only (baselines.py); Spearman and bias only for rules "
                    "with an h. A positive last column: DELICAITE's rule controls disease in more patients.") +
            figure(out_dir, figures["h"], "interaction score distribution and estimated vs true h"))


def cohort_html(results: dict, figures: dict[str, str], out_dir: Path) -> str:
    m = results["meta"]
    banner = [f"Model: {m['note']}."]
    if m["simulated"]:
        banner.insert(0, "SIMULATED COHORT (truth.csv present): these are not patients; the numbers test the method.")
    body = (_overview(results) + _tables_1_2(results) + _table3(results, figures, out_dir) + _delong(results) +
            _calibration(results, figures, out_dir) + _survival(results, figures, out_dir) + _policy(results))
    if "truth" in results:
        body += _truth(results, figures, out_dir)
    else:
        body += "<h2>Interaction score</h2>" + figure(out_dir, figures["h"], "interaction score distribution")
    return page("DELICAITE cohort evaluation", banner, body)
