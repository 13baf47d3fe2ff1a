"""The clinical form generated from the schema: widgets, inline messages, and the record it yields."""

import pytest

from DELICAITELib.clinical import SCHEMA, validate_record
from DELICAITELib.clinical.form import NOT_GIVEN, check_field, form_fields, form_values, record_from_form
from DELICAITELib.demo import DEMO_CLINICAL
from DELICAITELib.errors import ClinicalError

EXPECTED_KIND = {"continuous": "number", "integer": "integer", "binary": "checkbox", "categorical": "choice"}


def test_every_schema_field_has_an_input_of_the_right_kind():
    fields = form_fields()
    assert [ff.name for ff in fields] == list(SCHEMA)
    for ff in fields:
        f = SCHEMA[ff.name]
        assert ff.kind == EXPECTED_KIND[f.kind], ff.name
        assert ff.required == f.required
        assert ff.label.startswith(f.label)
        if f.unit:
            assert ff.label.endswith(f"({f.unit})") and ff.unit == f.unit
        if f.range is not None:
            assert (ff.minimum, ff.maximum) == (f.range[0], f.range[1])
            assert f.range_text() in ff.tooltip and f.range_text() in ff.placeholder
        if ff.kind == "choice":
            values = [v for v, _ in ff.choices]
            if f.required:
                assert values == list(f.allowed)
            else:
                assert ff.choices[0] == NOT_GIVEN and values[1:] == list(f.allowed)
        assert ("Required" in ff.tooltip) == f.required


def test_specific_widgets():
    by_name = {ff.name: ff for ff in form_fields()}
    alb = by_name["alb"]
    assert (alb.kind, alb.label, alb.minimum, alb.maximum, alb.decimals) == ("number", "ALB (g/L)", 10, 70, 1)
    assert by_name["inr"].decimals == 2 and by_name["inr"].unit == ""
    assert by_name["ecog"].kind == "integer" and (by_name["ecog"].minimum, by_name["ecog"].maximum) == (0, 4)
    assert by_name["pvtt"].kind == "checkbox" and by_name["pvtt"].required
    assert by_name["sex"].choices == (("male", "male"), ("female", "female"))
    assert "serum albumin" in alb.tooltip.lower()


@pytest.mark.parametrize("name, text, expected", [
    ("alb", "38.5", None),
    ("alb", " 38.5 g/L ", None),
    ("alb", "3.5 g/dL", "enter it in g/L"),           # wrong unit: the expected unit is named
    ("tbil", "1.1 mg/dL", "enter it in µmol/L"),
    ("alb", "700", "outside the plausible range 10–70 g/L"),
    ("age", "12", "outside the plausible range 18–100 y"),
    ("alb", "abc", "is not a number"),
    ("ecog", "1.5", "not a whole number"),
    ("sex", "unknown", "is not one of male, female"),
    ("afp", "", "AFP is required"),
    ("age", "   ", "Age is required"),
    ("tumour_number", "", "Tumour number is required"),
    ("alb", "", None),                                 # optional and empty: fine
    ("bclc", "", None),
    ("pvtt", True, None),
    ("pvtt", False, None),                             # an unticked required box is "no", not missing
])
def test_inline_messages(name, text, expected):
    message = check_field(name, text)
    if expected is None:
        assert message is None
    else:
        assert message is not None and expected in message


def test_inline_message_is_the_validation_message():
    with pytest.raises(ClinicalError) as err:
        validate_record({**DEMO_CLINICAL, "alb": "3.5 g/dL"})
    assert check_field("alb", "3.5 g/dL") == str(err.value)


def test_demo_patient_round_trips_through_the_form():
    shown = form_values(DEMO_CLINICAL)
    assert shown["alb"] == "38.5" and shown["afp"] == "1250" and shown["pvtt"] is True
    assert shown["tumour_number"] == ">3" and shown["comorbidity"] is False
    assert all(check_field(name, value) is None for name, value in shown.items())
    assert validate_record(record_from_form(shown)) == validate_record(DEMO_CLINICAL)


def test_empty_optional_fields_are_left_out():
    shown = form_values(DEMO_CLINICAL)
    shown.update(alb="", bclc="", crp="  ")
    record = record_from_form(shown)
    assert not {"alb", "bclc", "crp"} & set(record)
    validated = validate_record(record)
    assert validated["alb"] is None and validated["bclc"] is None
    assert validated["age"] == DEMO_CLINICAL["age"]


def test_empty_required_field_is_refused_by_validate_record():
    shown = form_values(DEMO_CLINICAL)
    shown["afp"] = ""
    with pytest.raises(ClinicalError, match="missing required field AFP"):
        validate_record(record_from_form(shown))


def test_form_values_of_an_empty_record_are_empty_inputs():
    shown = form_values({})
    assert shown["alb"] == "" and shown["sex"] == "" and shown["pvtt"] is False
    assert check_field("sex", shown["sex"]) == "Sex is required"
