"""Clinical covariates: schema validation (units, ranges, typos), encoding, and the HCC-TACE-Seg mapping."""

import csv
import math

import numpy as np
import pandas as pd
import pytest

from DELICAITELib import ClinicalError
from DELICAITELib.clinical import (MISSING_FIELDS, SCHEMA, encode, encoded_columns, load_hcc_tace_seg,
                                   mapping_markdown, validate_record, validate_table)

GOOD = {
    "age": 52, "sex": "male", "ecog": 0, "comorbidity": "no", "etiology": "HBV", "ascites": False,
    "alb": 38.8, "alt": 48, "ast": "70 U/L", "tbil": "16 umol/L", "pt": 12.4, "inr": 1.08, "plt": 218,
    "crp": 20, "cre": "72 µmol/L", "child_pugh": 5, "max_diameter": "11.0 cm", "tumour_number": ">3",
    "pvtt": "yes", "metastasis": 0, "bclc": "C", "afp": "1200 ng/mL",
}


def bad(**changes):
    record = dict(GOOD)
    for key, value in changes.items():
        if value is KeyError:
            record.pop(key)
        else:
            record[key] = value
    return record


def error_of(record) -> str:
    with pytest.raises(ClinicalError) as info:
        validate_record(record)
    message = str(info.value)
    assert "\n" not in message, f"message is not one line: {message!r}"
    return message


# ---------------------------------------------------------------- validation: bad input

def test_out_of_range_names_field_value_and_range():
    message = error_of(bad(alb=-5))
    assert "ALB" in message and "-5" in message and "10–70 g/L" in message and "outside the plausible range" in message


def test_text_for_a_number_names_field_value_and_unit():
    message = error_of(bad(afp="high"))
    assert "AFP" in message and "'high'" in message and "ng/mL" in message


@pytest.mark.parametrize("field, value, wrong, right", [
    ("alb", "3.88 g/dL", "g/dL", "g/L"),
    ("tbil", "0.9 mg/dL", "mg/dL", "µmol/L"),
    ("cre", "0.8 mg/dl", "mg/dl", "µmol/L"),
    ("max_diameter", "110 mm", "mm", "cm"),
    ("afp", "500 IU/mL", "IU/mL", "ng/mL"),
])
def test_wrong_unit_is_refused_not_converted(field, value, wrong, right):
    message = error_of(bad(**{field: value}))
    assert SCHEMA[field].label in message and wrong in message and right in message
    assert "not converted" in message


def test_unknown_unit_is_refused():
    message = error_of(bad(alb="38 furlongs"))
    assert "ALB" in message and "furlongs" in message and "g/L" in message


def test_unknown_field_suggests_the_closest_name():
    record = bad(alb=KeyError, albumn=38.8)
    assert "did you mean 'alb'" in error_of(record)
    assert "did you mean 'tumour_number'" in error_of(bad(tumour_number=KeyError, tumor_number=">3"))


def test_missing_required_field_is_named():
    message = error_of(bad(afp=KeyError))
    assert "missing required field" in message and "AFP" in message
    assert "PVTT" in error_of(bad(pvtt=None))
    # not required: may be missing, comes back as None
    assert validate_record(bad(alb=KeyError))["alb"] is None
    # a public table lacking required fields can opt out
    assert validate_record(bad(afp=KeyError), require=False)["afp"] is None


@pytest.mark.parametrize("field, value, words", [
    ("pvtt", "maybe", ["PVTT", "'maybe'", "yes/no"]),
    ("ecog", 1.5, ["ECOG", "whole number"]),
    ("ecog", 7, ["ECOG", "0–4"]),
    ("child_pugh", 4, ["Child-Pugh", "5–15"]),
    ("bclc", "E", ["BCLC", "'E'"]),
    ("sex", "x", ["Sex", "male, female"]),
    ("alb", True, ["ALB", "yes/no"]),
    ("inr", "1.1 s", ["INR", "no unit"]),
    ("alb", float("inf"), ["ALB", "not a finite"]),
])
def test_other_bad_values_name_the_field(field, value, words):
    message = error_of(bad(**{field: value}))
    for word in words:
        assert word in message, message


# ---------------------------------------------------------------- validation: good input

def test_good_record_is_normalised_and_round_trips():
    out = validate_record(GOOD)
    assert list(out) == list(SCHEMA)
    assert out["ast"] == 70.0 and out["tbil"] == 16.0 and out["cre"] == 72.0 and out["afp"] == 1200.0
    assert out["comorbidity"] == 0 and out["ascites"] == 0 and out["pvtt"] == 1
    assert out["ecog"] == 0 and isinstance(out["child_pugh"], int) and out["tumour_number"] == ">3"
    assert validate_record(out) == out


@pytest.mark.parametrize("field, value, expected", [
    ("pvtt", "TRUE", 1), ("pvtt", "No", 0), ("pvtt", 1, 1), ("pvtt", 0.0, 0), ("pvtt", True, 1),
    ("sex", "Female", "female"), ("sex", "M", "male"), ("etiology", "hbv", "HBV"),
    ("bclc", 0, "0"), ("bclc", "Stage-B", "B"), ("tumour_number", "≤ 3", "<=3"), ("tumour_number", 5, ">3"),
    ("afp", "20 µg/L", 20.0), ("tbil", "16 μmol/L", 16.0), ("plt", "218 x10^9/L", 218.0), ("alb", " 38.8g/l ", 38.8),
    ("child_pugh", "6", 6), ("age", "61 years", 61.0),
])
def test_accepted_spellings(field, value, expected):
    assert validate_record(bad(**{field: value}))[field] == expected


def test_keys_are_case_insensitive_but_not_duplicated():
    record = {("ALB" if k == "alb" else k): v for k, v in GOOD.items()}
    assert validate_record(record)["alb"] == 38.8
    assert "twice" in error_of({**GOOD, "ALB": 38.8})


def test_validate_table_names_row_patient_and_column():
    df = pd.DataFrame([dict(GOOD, patient_id="P1"), dict(GOOD, patient_id="P2", alb=-5), dict(GOOD, patient_id="P3", afp="high")])
    with pytest.raises(ClinicalError) as info:
        validate_table(df)
    message = str(info.value)
    assert "\n" not in message
    assert "row 2 (patient P2), column alb" in message and "row 3 (patient P3), column afp" in message
    assert len(info.value.problems) == 2


def test_validate_table_reports_unknown_columns_and_returns_types():
    df = pd.DataFrame([GOOD, dict(GOOD, alb=None)])
    with pytest.raises(ClinicalError, match="did you mean 'alb'"):
        validate_table(df.rename(columns={"alb": "albumin"}))
    out = validate_table(df.assign(note="x"), extra="ignore")
    assert list(out.columns) == list(SCHEMA)
    assert out["alb"].dtype == float and math.isnan(out.loc[1, "alb"]) and out.loc[0, "tbil"] == 16.0
    assert out.loc[0, "bclc"] == "C"


# ---------------------------------------------------------------- encoding

def test_encoded_columns_are_stable_and_numeric():
    cols = encoded_columns()
    assert cols == encoded_columns() and len(cols) == len(set(cols)) == 28
    cols.append("junk")
    assert "junk" not in encoded_columns()  # a fresh list each time
    record = validate_record(GOOD)
    one = encode(record)
    assert list(one.columns) == encoded_columns() and (one.dtypes == float).all()
    assert one.shape == (1, 28) and not one.isna().any().any()
    row = one.iloc[0]
    assert row["log_afp"] == pytest.approx(np.log1p(1200)) and row["afp_ge_400"] == 1
    assert row["log_tbil"] == pytest.approx(np.log1p(16)) and row["alb"] == 38.8
    assert row["bclc_C"] == 1 and row["bclc_B"] == 0 and row["bclc_0"] == 0      # reference A
    assert row["sex_female"] == 0 and row["etiology_none"] == 0 and row["tumour_number_gt3"] == 1


def test_encode_accepts_dict_list_and_frame_alike():
    records = [validate_record(GOOD), validate_record(bad(sex="female", afp=12, bclc="A", etiology="none"))]
    from_list = encode(records)
    pd.testing.assert_frame_equal(from_list, encode(pd.DataFrame(records)))
    pd.testing.assert_frame_equal(from_list.iloc[[0]], encode(records[0]))
    second = from_list.iloc[1]
    assert second["sex_female"] == 1 and second["afp_ge_400"] == 0 and second["etiology_none"] == 1
    assert second[["bclc_0", "bclc_B", "bclc_C", "bclc_D"]].sum() == 0


def test_encode_keeps_missing_as_nan_and_refuses_unvalidated_text():
    out = encode(validate_record(bad(alb=None, bclc=None), require=False))
    assert math.isnan(out.loc[0, "alb"]) and out[["bclc_0", "bclc_B", "bclc_C", "bclc_D"]].isna().all(axis=None)
    with pytest.raises(ClinicalError, match="ALB"):
        encode(validate_record(GOOD) | {"alb": "3.9 g/dL"})
    with pytest.raises(ClinicalError, match="BCLC"):
        encode(validate_record(GOOD) | {"bclc": "E"})


# ---------------------------------------------------------------- HCC-TACE-Seg

@pytest.fixture(scope="module")
def hcc(hcc_clinical_csv):
    covariates, outcomes = load_hcc_tace_seg(hcc_clinical_csv)
    with open(hcc_clinical_csv, newline="") as fh:
        raw = list(csv.DictReader(fh))
    return covariates, outcomes, raw


def test_hcc_tace_seg_maps_105_validated_patients(hcc):
    covariates, outcomes, raw = hcc
    assert len(covariates) == len(outcomes) == len(raw) == 105
    assert list(covariates["patient_id"]) == [r["TCIA_ID"] for r in raw] == list(outcomes["patient_id"])
    # the table has these fields nowhere: all missing, and said so
    missing = [f for f in SCHEMA if covariates[f].isna().all()]
    assert missing == list(MISSING_FIELDS) == covariates.attrs["missing_fields"]
    assert set(missing) == {"comorbidity", "ascites", "alb", "alt", "ast", "tbil", "pt", "inr", "plt", "crp",
                            "cre", "child_pugh"}
    # re-validating the mapped table finds nothing to refuse
    validate_table(covariates, require=False)
    # spot checks against the raw CSV, read independently
    assert (covariates["sex"] == "male").sum() == sum(r["Sex"] == "1" for r in raw)
    assert covariates["pvtt"].sum() == sum(r["Portal Vein Thrombosis"] == "1" for r in raw)
    assert (covariates["bclc"] == "C").sum() == sum(r["BCLC"] == "Stage-C" for r in raw)
    assert (covariates["afp"] >= 400).sum() == sum(r["AFP_group"] == ">=400" for r in raw)
    assert covariates["max_diameter"].notna().sum() == sum(r["Tr_Size"] != "" for r in raw)
    assert (covariates["tumour_number"] == ">3").sum() == sum(r["tumor_nodul"] == "multinodular" for r in raw)
    assert encode(covariates).shape == (105, 28)


def test_hcc_tace_seg_outcomes_match_the_raw_table(hcc):
    _, outcomes, raw = hcc
    readings = [r["1_mRECIST"] for r in raw]
    assert outcomes["pd"].isna().sum() == readings.count("")
    assert outcomes["pd"].sum() == sum(v != "" and float(v) == 4 for v in readings)
    assert 0 < outcomes["pd"].sum() < outcomes["pd"].notna().sum()
    assert outcomes["os_event"].sum() == sum(r["Death_1_StillAliveorLostToFU_0"] == "1" for r in raw)
    assert outcomes["progression_event"].sum() == sum(r["Censored_0_progressed_1"] == "1" for r in raw)
    weeks = np.array([float(r["OS"]) for r in raw])
    np.testing.assert_allclose(outcomes["os_months"], weeks * 7 / 30.4375)
    np.testing.assert_allclose(outcomes["ttp_months"], [float(r["TTP"]) * 7 / 30.4375 for r in raw])
    assert (outcomes["ttp_months"] > 0).all() and (outcomes["os_months"] > 0).all()
    assert 12 < outcomes["os_months"].median() < 48  # months, not weeks


def test_mapping_markdown_documents_every_column():
    text = mapping_markdown()
    for source in ("TCIA_ID", "Sex", "hepatitis", "PS_bclc_0_0_1-2_1_3-4_3", "Tr_Size", "tumor_nodul",
                   "Portal Vein Thrombosis", "Metastasis", "AFP", "BCLC", "1_mRECIST", "OS", "TTP"):
        assert f"`{source}`" in text
    for name in MISSING_FIELDS:
        assert f"`{name}`" in text
    assert text.count("\n| ") > 25


def test_loader_refuses_a_table_that_is_not_hcc_tace_seg(tmp_path):
    path = tmp_path / "other.csv"
    pd.DataFrame({"TCIA_ID": ["A"], "age": [50]}).to_csv(path, index=False)
    with pytest.raises(ClinicalError, match="columns missing: .*Sex"):
        load_hcc_tace_seg(path)
