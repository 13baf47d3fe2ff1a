"""The clinical form a GUI builds from the covariate schema, and its inline checks.

Nothing here knows Qt: `form_fields()` describes each input (widget kind, label with unit, range,
choices, tooltip) and `check_field` / `record_from_form` turn what the user typed into messages and a
record, through the same `validate_value` / `validate_record` every other door uses.

Numbers are meant for a line edit, not a spin box: a spin box silently clamps 700 to the range maximum
and cannot take "38 g/L" or stay empty, whereas here an out-of-range value or a wrong unit gets a message
and an empty optional field means "not given" (the model then uses the training cohort's mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ClinicalError
from .schema import SCHEMA, Field
from .validation import is_missing, validate_value

# widget kind per schema kind
WIDGET_KINDS = {"continuous": "number", "integer": "integer", "binary": "checkbox", "categorical": "choice"}
NOT_GIVEN = ("", "not given")  # the (value, text) of the empty entry of an optional choice
# decimals shown for numbers; 1 unless a field needs otherwise
_DECIMALS = {"age": 0, "inr": 2, "afp": 1}


@dataclass(frozen=True)
class FormField:
    """One input of the clinical form.

    kind: "number", "integer", "checkbox" or "choice"; minimum/maximum: the plausible range (numbers);
    decimals: digits shown after the point; unit: the suffix shown beside the input ('' when none);
    choices: (value, text) pairs of a choice, the first being NOT_GIVEN for optional fields.
    """

    name: str
    label: str
    kind: str
    required: bool
    tooltip: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    decimals: int = 0
    choices: tuple[tuple[str, str], ...] = ()
    placeholder: str = ""


def _form_field(f: Field) -> FormField:
    kind = WIDGET_KINDS[f.kind]
    label = f"{f.label} ({f.unit})" if f.unit else f.label
    tooltip = f.description[:1].upper() + f.description[1:] if f.description else f.label
    extra = {}
    if f.range is not None:
        tooltip += f". Plausible range {f.range_text()}"
        extra = {"minimum": float(f.range[0]), "maximum": float(f.range[1]),
                 "decimals": 0 if kind == "integer" else _DECIMALS.get(f.name, 1),
                 "placeholder": f.range_text() if f.required else f"{f.range_text()} (optional)"}
        if f.unit:
            tooltip += f"; enter it in {f.unit}, other units are refused, not converted"
    if kind == "checkbox":
        tooltip += ". Ticked = yes, unticked = no" + ("" if f.required else ".")
    if kind == "choice":
        choices = tuple((v, v) for v in f.allowed)
        extra["choices"] = choices if f.required else (NOT_GIVEN, *choices)
    if f.required:
        tooltip += ". Required."
    elif kind != "checkbox":  # a checkbox is never empty
        tooltip += ". Optional: leave empty if unknown (the model then uses the training cohort's mean)."
    return FormField(name=f.name, label=label, kind=kind, required=f.required, tooltip=tooltip,
                     unit=f.unit or "", **extra)


def form_fields() -> list[FormField]:
    """One FormField per schema field, in schema order."""
    return [_form_field(f) for f in SCHEMA.values()]


def check_field(name: str, value) -> str | None:
    """None when ``value`` (typed text, a number, a bool or a choice) is acceptable for field ``name``,
    else a one-line message to show beside the input."""
    f = SCHEMA[name]
    if is_missing(value):
        return f"{f.label} is required" if f.required else None
    try:
        validate_value(name, value.strip() if isinstance(value, str) else value)
    except ClinicalError as err:
        return str(err)
    return None


def record_from_form(values: Mapping) -> dict:
    """The record for `validate_record` from the form's values: empty entries are left out, text stripped.

    Checkbox values (bool) are always kept: an unticked box means "no", not "not given".
    """
    record = {}
    for name, value in values.items():
        if isinstance(value, str):
            value = value.strip()
        if not is_missing(value):
            record[name] = value
    return record


def form_values(record: Mapping) -> dict:
    """What each input shows for ``record`` (e.g. DEMO_CLINICAL): text for numbers, bool for checkboxes,
    the choice value (or "" for not given) for choices. Fields absent from ``record`` are empty."""
    out = {}
    for ff in form_fields():
        value = record.get(ff.name)
        if ff.kind == "checkbox":
            out[ff.name] = bool(validate_value(ff.name, value)) if not is_missing(value) else False
        elif is_missing(value):
            out[ff.name] = ""
        elif ff.kind in ("number", "integer"):
            out[ff.name] = f"{validate_value(ff.name, value):.10g}"
        else:
            out[ff.name] = validate_value(ff.name, value)
    return out
