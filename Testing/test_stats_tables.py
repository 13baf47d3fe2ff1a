"""Table 1 and the logistic table (DELICAITELib.stats.tables): scipy's p-values on a small example,
formatting, missing values, a known effect in a simulated cohort, and the real HCC-TACE-Seg table."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from DELICAITELib.clinical import encode, load_hcc_tace_seg
from DELICAITELib.errors import DelicaiteError
from DELICAITELib.simulate import simulate_cohort
from DELICAITELib.stats.tables import format_p, logistic_table, table1


def _small():
    return pd.DataFrame({
        "arm": ["A"] * 6 + ["B"] * 6,
        "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 4.5, 5.5, 6.5, 7.5, 8.5, np.nan],
        "flag": [1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1],
        "colour": ["red", "red", "blue", None, "blue", "red", "blue", "blue", "blue", "red", "blue", "blue"],
    })


def _row(t, var, level=None):
    rows = t[(t["variable"] == var) & ((t["level"] == level) if level is not None else True)]
    return rows.iloc[0]


def test_table1_p_values_equal_scipy_and_format():
    df = _small()
    t = table1(df, "arm", categorical=["flag"])
    assert list(t.columns) == ["variable", "label", "level", "A", "B", "Overall", "test", "p"]
    assert _row(t, "N")[["A", "B", "Overall"]].tolist() == ["6", "6", "12"]
    x = _row(t, "x", "median (IQR)")
    assert x["A"] == "3.5 (2.3–4.8)"  # quartiles 2.25, 3.5, 4.75 at the data's precision (1 decimal: 4.5 …)
    assert _row(t, "x")["B"] == "6.5 (5.5–7.5)"
    assert x["test"] == "Wilcoxon rank-sum"
    assert x["p"] == pytest.approx(stats.mannwhitneyu([1, 2, 3, 4, 5, 6], [4.5, 5.5, 6.5, 7.5, 8.5],
                                                      alternative="two-sided").pvalue)
    assert _row(t, "x", "missing")[["A", "B", "Overall"]].tolist() == ["0 (0.0 %)", "1 (16.7 %)", "1 (8.3 %)"]
    flag = _row(t, "flag", "1")
    assert flag[["A", "B"]].tolist() == ["2 (33.3 %)", "5 (83.3 %)"]
    assert _row(t, "flag", "0")["test"] == "Fisher exact"  # 2×2 with expected counts < 5
    assert _row(t, "flag", "0")["p"] == pytest.approx(stats.fisher_exact([[4, 1], [2, 5]]).pvalue)
    colour = t[t["variable"] == "colour"]
    assert colour["level"].tolist() == ["blue", "red", "missing"]  # missing is its own row, not a level
    assert colour["A"].tolist() == ["2 (33.3 %)", "3 (50.0 %)", "1 (16.7 %)"]
    assert colour.iloc[0]["p"] == pytest.approx(stats.fisher_exact([[2, 5], [3, 1]]).pvalue)


def test_format_p():
    assert [format_p(p) for p in (0.0004, 0.0312, 0.5, np.nan)] == ["<0.001", "0.031", "0.500", ""]


def test_table1_three_groups_and_chi_square():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": rng.choice(["a", "b", "c"], 300), "x": rng.normal(size=300),
                       "c": rng.choice(["u", "v", "w"], 300)})
    t = table1(df, "g", variables=["x", "c"])
    samples = [df.x[df.g == k] for k in "abc"]
    assert _row(t, "x")["test"] == "Kruskal–Wallis"
    assert _row(t, "x")["p"] == pytest.approx(stats.kruskal(*samples).pvalue)
    counts = pd.crosstab(df.c, df.g).to_numpy()
    assert _row(t, "c")["test"] == "χ²"
    assert _row(t, "c")["p"] == pytest.approx(stats.chi2_contingency(counts).pvalue)


def test_table1_simulated_cohort_finds_known_imbalance():
    # physicians send PVTT patients to HAIC (DELICAITELib.simulate: +1.2 log-odds)
    cohort = simulate_cohort(900, seed=1)
    frame = cohort.to_frame()
    t = table1(frame, "therapy", variables=["age", "alb", "pvtt", "child_pugh", "bclc"])
    pvtt = t[(t.variable == "pvtt") & (t.level == "1")].iloc[0]
    share = {k: float(pvtt[k].split("(")[1].split()[0]) for k in ("HAIC", "TACE")}
    assert share["HAIC"] > share["TACE"] + 15
    assert t[t.variable == "pvtt"].iloc[0]["p"] < 1e-6
    assert _row(t, "age")["Overall"].count("(") == 1 and "–" in _row(t, "age")["Overall"]
    assert "missing" not in set(t["level"])


def test_logistic_table_recovers_known_direction_in_simulation():
    # within TACE, logit P(PD) = g − h/2 contains +1.7·PVTT; within HAIC −1.7·PVTT (the interaction)
    frame = simulate_cohort(2000, seed=4, assignment="randomized").to_frame()
    variables = ["pvtt", "metastasis", "child_pugh", "max_diameter", "tumour_number"]
    tace = logistic_table(frame[frame.therapy == "TACE"], "pd", variables, multivariate=variables)
    haic = logistic_table(frame[frame.therapy == "HAIC"], "pd", variables, multivariate="p<0.1")
    row = tace.set_index("term").loc["pvtt"]
    assert row.multi_or > 2.5 and row.multi_p < 1e-6 and row.multi_lo < row.multi_or < row.multi_hi
    assert tace.set_index("term").loc["metastasis"].multi_or > 1
    assert "tumour_number: >3 vs <=3" in set(tace.term)  # categorical against the schema's reference
    assert haic.set_index("term").loc["pvtt"].uni_or < 0.5 and "pvtt" in haic.attrs["multivariate"]
    assert tace.attrs["multi_n"] == (frame.therapy == "TACE").sum()


def test_logistic_table_matches_statsmodels_by_hand_and_refuses_separation():
    import statsmodels.api as sm

    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.normal(size=200)})
    df["y"] = (rng.random(200) < 1 / (1 + np.exp(-df.x))).astype(int)
    fit = sm.Logit(df.y, sm.add_constant(df[["x"]])).fit(disp=0)
    row = logistic_table(df, "y", ["x"]).iloc[0]
    assert row.uni_or == pytest.approx(np.exp(fit.params["x"]))
    assert row.uni_lo == pytest.approx(np.exp(fit.conf_int().loc["x", 0]))
    assert row.uni_p == pytest.approx(fit.pvalues["x"])
    df["sep"] = (df.x > 0).astype(float)
    df["y2"] = df["sep"].astype(int)
    with pytest.raises(DelicaiteError, match="perfect separation"):
        logistic_table(df, "y2", ["x"])


@pytest.fixture(scope="module")
def hcc(hcc_clinical_csv):
    covariates, outcomes = load_hcc_tace_seg(hcc_clinical_csv)
    frame = covariates.merge(outcomes, on="patient_id")
    frame["afp_group"] = np.where(frame.afp >= 400, "AFP ≥ 400", "AFP < 400")
    frame["afp_ge_400"] = encode(covariates)["afp_ge_400"].to_numpy()
    return frame


def test_real_hcc_table1_by_afp(hcc):
    t = table1(hcc, "afp_group", variables=["age", "sex", "ecog", "etiology", "max_diameter", "tumour_number",
                                            "pvtt", "metastasis", "bclc", "afp", "alb"])
    n = _row(t, "N")
    assert int(n["Overall"]) == 105 and int(n["AFP ≥ 400"]) == int((hcc.afp >= 400).sum())
    assert _row(t, "afp")["p"] < 1e-10  # the grouping variable itself
    assert set(t[t.variable == "bclc"].level) == {"A", "B", "C", "D"}
    # tumour size is missing for about half: counted, not dropped
    assert int(_row(t, "max_diameter", "missing")["Overall"].split()[0]) == int(hcc.max_diameter.isna().sum()) > 40
    assert _row(t, "alb")["Overall"] == "–" and _row(t, "alb", "missing")["Overall"] == "105 (100.0 %)"
    auto = table1(hcc.drop(columns=["afp_ge_400"]), "afp_group")
    assert "alb" not in set(auto.variable) and "alb" in auto.attrs["notes"][0]


def test_real_hcc_logistic_table_for_pd(hcc):
    available = ["age", "sex", "ecog", "tumour_number", "pvtt", "metastasis", "afp_ge_400"]
    t = logistic_table(hcc, "pd", available, multivariate=["pvtt", "afp_ge_400", "ecog"])
    assert t.uni_or.notna().all() and (t.uni_lo < t.uni_or).all() and (t.uni_or < t.uni_hi).all()
    assert t.set_index("variable").loc["age", "uni_n"] == hcc.pd.notna().sum() == 96
    assert t.multi_or.notna().sum() == 3 and t.attrs["multi_n"] == 96
    # no PD at all among BCLC A/B/D: a clear error, or a noted row on request
    with pytest.raises(DelicaiteError, match="perfect separation.*bclc"):
        logistic_table(hcc, "pd", ["pvtt", "bclc"])
    skipped = logistic_table(hcc, "pd", ["pvtt", "bclc"], on_separation="skip")
    assert skipped[skipped.variable == "bclc"].uni_or.isna().all()
    assert skipped[skipped.variable == "bclc"].note.str.contains("separation").all()
    assert skipped[skipped.variable == "pvtt"].uni_or.notna().all()
    # tumour size: known for 47 patients with a reading, of whom the single PD has the largest tumour
    size = logistic_table(hcc, "pd", ["max_diameter"], on_separation="skip").iloc[0]
    assert size.uni_n == (hcc.pd.notna() & hcc.max_diameter.notna()).sum() < 60
    assert np.isnan(size.uni_or) and "fitted probabilities reach 0 or 1" in size.note
