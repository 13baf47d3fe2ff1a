"""`delicaite cohort evaluate` end to end on simulated cohorts (simulate → cohort train --quick → evaluate):
every section of the report, numbers that agree with scikit-learn and with the simulation's truth, and
an HTML that shows what results.json holds."""

import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from DELICAITELib.cli import main
from DELICAITELib.clinical import encode
from DELICAITELib.cohort import write_cohort
from DELICAITELib.evaluation.cohort_evaluation import delong_tests
from DELICAITELib.evaluation.common import IN_SAMPLE, fmt_ci, fmt_median, fmt_p
from DELICAITELib.simulate import simulate_cohort
from DELICAITELib.stats import threshold_metrics

SETS = ("training", "internal_test", "external_test")
GROUPS = ("Maintain", "Alter", "No clear preference")


def _pipeline(tmp, *simulate_args):
    assert main(["simulate", "--n", "900", "--seed", "3", *simulate_args, "--out", str(tmp / "cohort")]) == 0
    assert main(["cohort", "train", "--cohort", str(tmp / "cohort"), "--out", str(tmp / "model"), "--quick"]) == 0
    assert main(["cohort", "evaluate", "--cohort", str(tmp / "cohort"), "--model", str(tmp / "model"),
                 "--out", str(tmp / "report"), "--n-boot", "200", "--seed", "1"]) == 0
    out = tmp / "report"
    return {"dir": out, "tmp": tmp, "results": json.loads((out / "results.json").read_text(encoding="utf-8")),
            "html": (out / "report.html").read_text(encoding="utf-8"),
            "predictions": pd.read_csv(out / "predictions.csv", dtype={"patient_id": str}, float_precision="round_trip"),
            "training": json.loads((tmp / "model" / "training.json").read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def physician(tmp_path_factory):
    """The study's situation: physicians chose the therapy (propensity 0.1–0.9, centre preferences)."""
    return _pipeline(tmp_path_factory.mktemp("physician"))


@pytest.fixture(scope="module")
def randomized(tmp_path_factory):
    return _pipeline(tmp_path_factory.mktemp("randomized"), "--assignment", "randomized")


class _Tables(HTMLParser):
    """Cell texts of every <table> of a page: tables[i][row][col]."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _tables(html):
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def _find_table(tables, header_cell):
    return next(t for t in tables if t and header_cell in t[0])


def test_report_has_every_section_and_no_patient_identifiers(physician):
    html = physician["html"]
    for heading in ("Table 1. Baseline characteristics", "By set", "By therapy", "Table 2. Logistic regression for PD",
                    "Table 3. PD prediction", "ROC curves", "DeLong tests", "Calibration",
                    "Overall survival: Maintain vs Alter", "Within TACE", "Within HAIC", "Policy value",
                    "Truth panel (simulated cohort)", "SIMULATED COHORT", "not validated for clinical use",
                    "true propensity (simulation)", "No clear preference",
                    "Training (in-sample: the models were fitted on these patients)",  # Table 3's and DeLong's rows
                    "Training rows are in-sample: they measure fit, not performance."):
        assert heading in html, heading
    assert not re.search(r"SIM\d{4}", html)  # patient identifiers stay in predictions.csv
    figures = physician["results"]["figures"]
    assert {"roc", "calibration", "h", "km_training", "km_internal_test", "km_external_test", "km_all_test"} <= set(figures)
    assert "km_all" not in figures  # the in-sample training set stays out of the pooled figures
    for relative in figures.values():
        data = (physician["dir"] / relative).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert html.count("data:image/png;base64,") == len(figures)


def test_table3_aucs_and_metrics_match_the_predictions(physician):
    r, pred = physician["results"], physician["predictions"]
    names = r["meta"]["models"]
    assert names[0] == "delicaite" and len(names) >= 3
    for s in SETS:
        p = pred[pred["set"] == s]
        assert len(p) == r["meta"]["n"][s]
        for name in names:
            row = r["table3"][s][name]
            auc, lo, hi = row["auc"]
            assert auc == pytest.approx(roc_auc_score(p["pd"], p[f"p_{name}"]), abs=1e-12)
            assert lo < auc < hi
            # the threshold is the one fixed on training, applied unchanged to every set
            assert row["threshold"] == pytest.approx(physician["training"]["thresholds"][name])
            metrics = threshold_metrics(p["pd"].to_numpy(int), p[f"p_{name}"].to_numpy(), row["threshold"])
            assert row["sen"][0] == pytest.approx(metrics["sen"]) and row["npv"][0] == pytest.approx(metrics["npv"])


def test_html_numbers_are_those_of_results_json(physician):
    r, tables = physician["results"], _tables(physician["html"])
    table3 = _find_table(tables, "AUC (95% CI)")
    row = next(t for t in table3 if t[0] == "External test" and t[1] == "delicaite")
    assert any(t[0] == IN_SAMPLE for t in table3) and not any(t[0] == "Training" for t in table3)
    assert row[3] == fmt_ci(r["table3"]["external_test"]["delicaite"]["auc"])
    assert row[5] == fmt_ci(r["table3"]["external_test"]["delicaite"]["sen"])
    delong = _find_table(tables, "AUC DELICAITE")
    comparator = r["meta"]["models"][1]
    cells = next(t for t in delong if t[0] == "Internal test" and t[1] == f"delicaite vs {comparator}")
    assert cells[-1] == fmt_p(r["delong"]["internal_test"][comparator]["p"])
    km = [t for t in tables if t[0] and t[0][0] == "Comparison"]
    assert len(km) == 4  # training, internal test, external test, the test sets pooled
    maintain_all = km[-1][1]
    pooled = r["survival"]["all_test"]["overall"]
    assert maintain_all[1] == "Maintain" and maintain_all[4] == fmt_median(pooled["groups"]["Maintain"])
    assert maintain_all[5] == fmt_p(pooled["logrank_p"])


def test_delong_of_identical_models_is_one_and_matches_table3(physician):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) + 0.3 * y
    same = delong_tests(y, {"delicaite": s, "copy": s.copy(), "other": rng.random(200)})
    assert same["copy"]["p"] == 1.0 and same["copy"]["difference"] == 0.0
    assert same["other"]["p"] < 0.05
    r = physician["results"]
    for s_ in SETS:
        for name, d in r["delong"][s_].items():
            assert d["auc_a"] == pytest.approx(r["table3"][s_]["delicaite"]["auc"][0])
            assert d["auc_b"] == pytest.approx(r["table3"][s_][name]["auc"][0])
            assert 0 <= d["p"] <= 1


def test_maintain_and_alter_partition_each_set(physician):
    r, pred = physician["results"], physician["predictions"]
    follows = pred["recommendation"] == pred["therapy"]
    assert (pred.loc[follows, "group"] == "Maintain").all()
    assert (pred.loc[~follows & (pred["recommendation"] != "No clear preference"), "group"] == "Alter").all()
    for s in (*SETS, "all_test"):
        counts = r["survival"][s]["counts"]
        n = r["meta"]["n"]["internal_test"] + r["meta"]["n"]["external_test"] if s == "all_test" else r["meta"]["n"][s]
        assert sum(counts[g] for g in GROUPS) == n  # pooled: the test sets only
        km = r["survival"][s]
        assert sum(g["n"] for g in km["overall"]["groups"].values()) == counts["Maintain"] + counts["Alter"]
        assert sum(g["n"] for t in ("TACE", "HAIC") for g in km[t]["groups"].values()) == counts["Maintain"] + counts["Alter"]


def test_policy_value_and_truth_panel_on_the_simulation(physician):
    r = physician["results"]
    for s in ("external_test", "all_test"):
        policies = r["policy"][s]["policies"]
        assert r["policy"][s]["propensity"] == "true propensity (simulation)"
        # most patients do better on HAIC: following the recommendation clearly beats treating everyone with TACE,
        # and every other policy gets the paired difference recommended minus it
        assert policies["recommended"]["value"] > policies["all TACE"]["hi"]
        assert policies["all TACE"]["difference"]["lo"] > 0
        for name in ("all HAIC", "linear logistic", "Tian lasso", "HAIC if PVTT", "best single covariate",
                     "clinical_logistic rule"):
            d = policies[name]["difference"]
            assert d["lo"] <= d["value"] <= d["hi"], name
        truth = r["truth"][s]
        assert truth["spearman"] > 0.6 and truth["oracle_agreement"] > 0.65
        assert abs(truth["bias_h"]) < 2 and 0 < truth["share_recommended_haic"] <= 1
        assert truth["true_value"]["recommended"] > truth["true_value"]["all TACE"]
        assert truth["true_value"]["oracle"] >= truth["true_value"]["recommended"]
        # the simple rules, fitted on the training set, stand beside it with their true values
        assert {"linear logistic", "Tian lasso", "HAIC if PVTT", "best single covariate"} <= set(truth["rules"])
        assert all(truth["rules"][n]["true_value"] <= truth["true_value"]["oracle"] for n in truth["rules"])
        assert "spearman" in truth["rules"]["linear logistic"] and "spearman" not in truth["rules"]["HAIC if PVTT"]


def test_truth_panel_reports_how_often_the_ensemble_spread_holds_the_true_h(physician):
    """The spread of h across ensemble members is not a confidence interval (it covered the true h for
    75 % of patients in the audit); the truth panel measures its coverage on the simulated cohort
    rather than claiming one, and the report says what the spread is."""
    frame = physician["predictions"]
    for s in ("external_test", "all_test"):
        rows = frame[frame["set"] != "training"] if s == "all_test" else frame[frame["set"] == s]
        inside = (rows["true_h"] >= rows["h_lo"]) & (rows["true_h"] <= rows["h_hi"])
        truth = physician["results"]["truth"][s]
        assert truth["spread_coverage"] == pytest.approx(inside.mean(), abs=1e-12)
        assert 0 < truth["spread_coverage"] < 1
        assert truth["spread_median_width"] == pytest.approx(np.median(rows["h_hi"] - rows["h_lo"]), abs=1e-12)
    assert "True h inside the ensemble spread" in physician["html"] and "not a confidence interval" in physician["html"]


def test_tables_1_and_2(physician):
    r = physician["results"]
    by_set = r["table1"]["by_set"]
    assert by_set["columns"][3:6] == list(SETS)
    n_row = dict(zip(by_set["columns"], by_set["rows"][0]))
    assert [int(n_row[s]) for s in SETS] == [r["meta"]["n"][s] for s in SETS]
    assert r["table1"]["by_therapy"]["columns"][3:5] == ["TACE", "HAIC"]
    t2 = r["table2"]
    assert t2["n"] == r["meta"]["n"]["training"]
    pvtt = next(dict(zip(t2["table"]["columns"], row)) for row in t2["table"]["rows"] if row[0] == "pvtt")
    assert pvtt["uni_lo"] < pvtt["uni_or"] < pvtt["uni_hi"]


def test_following_the_recommendation_lengthens_survival_when_therapy_was_randomized(randomized):
    # in the simulator PD doubles the hazard, so the therapy with the lower PD risk lengthens survival; with
    # randomized therapy nothing else separates Maintain from Alter (under physician choice PVTT both raises
    # the hazard and leads to HAIC, so the unadjusted comparison there is confounded: the report says so)
    pooled = randomized["results"]["survival"]["all_test"]
    overall = pooled["overall"]
    assert overall["groups"]["Maintain"]["median"] > overall["groups"]["Alter"]["median"]
    assert overall["logrank_p"] < 0.05
    if "hr" in pooled["adjusted_cox"]:
        assert pooled["adjusted_cox"]["hr"] < 1
    else:  # too few patients recommended TACE: the report says the ratio is not identified
        assert pooled["adjusted_cox"]["note"].startswith("not identifiable")


def test_single_therapy_cohort_runs_only_the_single_therapy_parts(tmp_path):
    cohort = simulate_cohort(300, seed=5)
    cohort.therapy = np.full(len(cohort), "TACE", dtype=object)
    cohort.true_h = cohort.propensity = cohort.true_g = cohort.true_p_tace = cohort.true_p_haic = None
    write_cohort(cohort, tmp_path / "tace_only")
    out = tmp_path / "report"
    assert main(["cohort", "evaluate", "--cohort", str(tmp_path / "tace_only"), "--model", str(tmp_path / "none"),
                 "--out", str(out), "--n-boot", "50"]) == 0
    r = json.loads((out / "results.json").read_text(encoding="utf-8"))
    html = (out / "report.html").read_text(encoding="utf-8")
    assert r["kind"] == "single-therapy cohort" and "received TACE" in r["meta"]["single_therapy_reason"]
    assert "only the single-therapy analyses" in html
    assert "Table 3" not in html and "Policy value" not in html and "Table 1. Baseline characteristics by AFP" in html
    assert sum(g["n"] for g in r["survival"]["afp"]["groups"].values()) == 300
    assert (out / r["figures"]["km_bclc"]).stat().st_size > 10_000


def test_without_truth_the_propensity_is_fitted_and_there_is_no_truth_panel(physician, tmp_path):
    cohort = tmp_path / "cohort"
    shutil.copytree(physician["tmp"] / "cohort", cohort)
    (cohort / "truth.csv").unlink()
    out = tmp_path / "report"
    assert main(["cohort", "evaluate", "--cohort", str(cohort), "--model", str(physician["tmp"] / "model"),
                 "--out", str(out), "--n-boot", "50"]) == 0
    r = json.loads((out / "results.json").read_text(encoding="utf-8"))
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "truth" not in r and "Truth panel" not in html and "SIMULATED COHORT" not in html
    assert r["policy"]["external_test"]["propensity"].startswith("fitted: L2-regularised logistic regression")
    policies = r["policy"]["all_test"]["policies"]
    assert policies["recommended"]["value"] > policies["all TACE"]["hi"]
    # the predictions do not depend on the truth file
    same = pd.read_csv(out / "predictions.csv", float_precision="round_trip")
    assert np.array_equal(same["p_delicaite"], physician["predictions"]["p_delicaite"])


def test_a_recommendation_that_never_varies_gets_no_hazard_ratio():
    """Everyone recommended HAIC: Maintain is "received HAIC", so an adjusted Maintain vs Alter hazard ratio is
    not identified; the section says so instead of printing one (and within TACE there is no Maintain)."""
    from DELICAITELib.evaluation.outcomes import survival_section
    from DELICAITELib.recommendation import group

    cohort = simulate_cohort(n=400, seed=3)
    frame = pd.DataFrame({"therapy": cohort.therapy, "recommendation": "HAIC", "os_months": cohort.os_months,
                          "os_event": cohort.os_event})
    frame["group"] = group(frame["therapy"].to_numpy(), frame["recommendation"].to_numpy())
    section = survival_section(frame, encode(cohort.covariates))
    assert "hr" not in section["adjusted_cox"] and section["adjusted_cox"]["note"].startswith("not identifiable")
    assert section["cells"]["TACE"]["Maintain"] == 0 and section["cells"]["HAIC"]["Alter"] == 0
    assert "hr" not in section["adjusted_within_TACE"] and "hr" not in section["adjusted_within_HAIC"]
    # a small group gets its median but no p-value
    tiny = frame.iloc[:14].assign(recommendation=np.where(np.arange(14) < 5, "TACE", "HAIC"))
    tiny["group"] = group(tiny["therapy"].to_numpy(), tiny["recommendation"].to_numpy())
    km = survival_section(tiny, encode(cohort.covariates.iloc[:14]))["overall"]
    assert np.isnan(km["logrank_p"]) and "no p-value" in km["note"]
