"""`delicaite cohort hcc-tace-seg`: the real-data section from the public HCC-TACE-Seg clinical table
(105 patients, all TACE): Table 1 by AFP group, logistic regression for PD that survives the table's
separation (BCLC, tumour size) with a note, and Kaplan–Meier OS by AFP group and by BCLC stage."""

import json

import numpy as np
import pytest
from lifelines.statistics import logrank_test

from DELICAITELib.cli import main
from DELICAITELib.clinical import load_hcc_tace_seg
from DELICAITELib.evaluation.common import fmt_median, fmt_p


@pytest.fixture(scope="module")
def section(hcc_clinical_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("hcc") / "report"
    assert main(["cohort", "hcc-tace-seg", "--table", str(hcc_clinical_csv), "--out", str(out)]) == 0
    covariates, outcomes = load_hcc_tace_seg(hcc_clinical_csv)
    return {"dir": out, "results": json.loads((out / "results.json").read_text(encoding="utf-8")),
            "html": (out / "report.html").read_text(encoding="utf-8"),
            "data": covariates.merge(outcomes, on="patient_id")}


def test_km_by_afp_group_matches_lifelines_and_the_page(section):
    r, data = section["results"], section["data"]
    afp = r["survival"]["afp"]
    high = (data["afp"] >= 400).to_numpy()
    assert afp["groups"]["AFP ≥ 400"]["n"] == int(high.sum()) and afp["groups"]["AFP < 400"]["n"] == int((~high).sum())
    expected = logrank_test(data.os_months[high], data.os_months[~high], data.os_event[high], data.os_event[~high])
    assert afp["logrank_p"] == pytest.approx(expected.p_value)
    for name, g in afp["groups"].items():
        assert np.isfinite(g["median"]) and g["median_lo"] <= g["median"] <= g["median_hi"]
        assert fmt_median(g) in section["html"]
    assert fmt_p(afp["logrank_p"]) in section["html"]


def test_km_by_bclc_stage(section):
    bclc = section["results"]["survival"]["bclc"]
    assert set(bclc["groups"]) == {"A", "B", "C", "D"}
    assert sum(g["n"] for g in bclc["groups"].values()) == 105
    assert 0 < bclc["logrank_p"] < 1 and bclc["test"] == "log-rank (4 groups)"
    assert len(bclc["pairwise"]) == 6
    for key in ("km_afp", "km_bclc"):
        assert (section["dir"] / section["results"]["figures"][key]).stat().st_size > 10_000


def test_table1_by_afp_group(section):
    t1 = section["results"]["table1"]
    assert t1["columns"][3:6] == ["AFP < 400", "AFP ≥ 400", "Overall"]
    n_row = dict(zip(t1["columns"], t1["rows"][0]))
    assert n_row["Overall"] == "105"
    afp = next(dict(zip(t1["columns"], row)) for row in t1["rows"] if row[0] == "afp")
    assert afp["test"] == "Wilcoxon rank-sum" and afp["p"] < 1e-10
    assert "Table 1. Baseline characteristics by AFP group" in section["html"]


def test_logistic_table_notes_the_separation_instead_of_failing(section):
    t2 = section["results"]["table2"]
    rows = [dict(zip(t2["table"]["columns"], row)) for row in t2["table"]["rows"]]
    assert t2["n"] == 96 and t2["n_pd"] == 6  # 9 patients without a response reading
    for separated in ("bclc", "max_diameter"):
        these = [r for r in rows if r["variable"] == separated]
        assert these and all(r["uni_or"] is None and "separation" in r["note"] for r in these)
    pvtt = next(r for r in rows if r["variable"] == "pvtt")
    assert pvtt["uni_lo"] < pvtt["uni_or"] < pvtt["uni_hi"]
    notes = " ".join(t2["table"]["notes"])
    assert "bclc" in notes and "max_diameter" in notes
    html = section["html"]
    assert "Table 2. Logistic regression for progressive disease" in html and "not estimable" in html
    assert "HCC_0" not in html  # no patient identifiers on the page
