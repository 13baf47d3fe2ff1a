"""The clinical covariate schema: one `Field` per Table-1 variable of the source study.

Units follow the project contract (DESIGN.md, "Clinical units"). Plausible ranges are wide enough for
real, very sick patients but exclude impossible values (a negative albumin, a 2 m tumour); they are a
typo guard, not an eligibility rule. `WRONG_UNITS` lists units people commonly use instead of ours;
values in them are refused with a message naming the expected unit, never converted.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

KINDS = ("continuous", "integer", "binary", "categorical")


@dataclass(frozen=True)
class Field:
    """One clinical covariate.

    name: the key used everywhere in code and tables; label: what a clinician reads in messages;
    kind: one of KINDS; unit: the only unit accepted (None for unitless); range: plausible (lo, hi),
    inclusive, for continuous/integer fields; allowed: the canonical values of a categorical field
    (binary fields are always 0/1); required: whether a record without it is refused.
    """

    name: str
    label: str
    kind: str
    unit: str | None = None
    range: tuple[float, float] | None = None
    allowed: tuple[str, ...] | None = None
    required: bool = False
    description: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Field {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind in ("continuous", "integer") and self.range is None:
            raise ValueError(f"Field {self.name}: a {self.kind} field needs a plausible range")
        if self.kind == "categorical" and not self.allowed:
            raise ValueError(f"Field {self.name}: a categorical field needs its allowed values")

    def unit_text(self) -> str:
        """The unit as shown in messages ('' for unitless fields)."""
        return f" {self.unit}" if self.unit else ""

    def range_text(self) -> str:
        """'10–70 g/L' style text of the plausible range."""
        lo, hi = self.range
        return f"{_fmt(lo)}–{_fmt(hi)}{self.unit_text()}"


def _fmt(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e6 else f"{x:.0f}"


# Required = what a clinician always has for a large-HCC tumour board and what the study found
# predictive (Table 2: tumour number, PVTT, AFP); everything else may be missing: the case workflow
# fills it with the training cohort's mean and lists it in result.json.
_FIELDS = [
    Field("age", "Age", "continuous", "y", (18, 100), required=True, description="age at baseline, years"),
    Field("sex", "Sex", "categorical", None, allowed=("male", "female"), required=True, description="sex"),
    Field("ecog", "ECOG", "integer", None, (0, 4),
          description="ECOG performance status (study cohort: 0 or 1; 3–4 are accepted but outside the study)"),
    Field("comorbidity", "Comorbidity", "binary", description="any relevant comorbidity (e.g. diabetes, hypertension)"),
    Field("etiology", "Etiology", "categorical", None, allowed=("none", "HBV", "HCV", "other"),
          description="underlying liver disease: none, hepatitis B, hepatitis C, other (incl. co-infection)"),
    Field("ascites", "Ascites", "binary", description="ascites present"),
    Field("alb", "ALB", "continuous", "g/L", (10, 70), description="serum albumin"),
    Field("alt", "ALT", "continuous", "U/L", (1, 5000), description="alanine aminotransferase"),
    Field("ast", "AST", "continuous", "U/L", (1, 10000), description="aspartate aminotransferase"),
    Field("tbil", "TBIL", "continuous", "µmol/L", (1, 850), description="total bilirubin"),
    Field("pt", "PT", "continuous", "s", (8, 60), description="prothrombin time"),
    Field("inr", "INR", "continuous", None, (0.7, 10), description="international normalised ratio"),
    Field("plt", "PLT", "continuous", "×10⁹/L", (5, 1500), description="platelet count"),
    Field("crp", "CRP", "continuous", "mg/L", (0, 500), description="C-reactive protein"),
    Field("cre", "CRE", "continuous", "µmol/L", (15, 1500), description="serum creatinine"),
    Field("child_pugh", "Child-Pugh score", "integer", None, (5, 15), description="Child-Pugh score, points"),
    Field("max_diameter", "Max tumour diameter", "continuous", "cm", (0.1, 35),
          description="largest tumour diameter on CT"),
    Field("tumour_number", "Tumour number", "categorical", None, allowed=("<=3", ">3"), required=True,
          description="number of tumour nodules, at most 3 or more than 3"),
    Field("pvtt", "PVTT", "binary", required=True, description="portal vein tumour thrombus"),
    Field("metastasis", "Metastasis", "binary", description="extrahepatic metastasis"),
    Field("bclc", "BCLC", "categorical", None, allowed=("0", "A", "B", "C", "D"), description="BCLC stage"),
    Field("afp", "AFP", "continuous", "ng/mL", (0, 5_000_000), required=True, description="alpha-fetoprotein"),
]

SCHEMA: "OrderedDict[str, Field]" = OrderedDict((f.name, f) for f in _FIELDS)
FIELD_NAMES: tuple[str, ...] = tuple(SCHEMA)

# Spellings of the schema unit that mean exactly the same quantity (no conversion involved), compared
# after `normalise_unit`. µg/L is ng/mL and ×10³/µL is ×10⁹/L, so they are the same unit, not another.
UNIT_ALIASES: dict[str, tuple[str, ...]] = {
    "age": ("y", "yr", "yrs", "year", "years"),
    "alb": ("g/l",),
    "alt": ("u/l", "iu/l"),
    "ast": ("u/l", "iu/l"),
    "tbil": ("µmol/l",),
    "pt": ("s", "sec", "secs", "second", "seconds"),
    "inr": (),
    "child_pugh": ("points", "point", "pts"),
    "ecog": (),
    "plt": ("×10⁹/l", "x10⁹/l", "x10^9/l", "×10^9/l", "10^9/l", "10⁹/l", "g/l", "×10³/µl", "x10^3/µl",
            "10^3/µl", "k/µl"),
    "crp": ("mg/l", "µg/ml"),
    "cre": ("µmol/l",),
    "max_diameter": ("cm",),
    "afp": ("ng/ml", "µg/l"),
}

# Units people commonly use instead of ours, per field: refused with the expected unit named.
WRONG_UNITS: dict[str, tuple[str, ...]] = {
    "age": ("month", "months", "mo", "d", "days"),
    "alb": ("g/dl", "mg/dl", "mg/ml", "µmol/l"),
    "alt": ("µkat/l", "nkat/l"),
    "ast": ("µkat/l", "nkat/l"),
    "tbil": ("mg/dl", "mg/l", "mmol/l"),
    "pt": ("%", "ms", "min"),
    "plt": ("/µl", "/mm3", "/mm³", "/l", "×10³/l"),
    "crp": ("mg/dl", "nmol/l", "mg/ml"),
    "cre": ("mg/dl", "mmol/l", "mg/l"),
    "max_diameter": ("mm", "m", "in", "inch"),
    "afp": ("iu/ml", "ku/l", "µg/ml", "mg/l", "ng/l"),
}


def normalise_unit(text: str) -> str:
    """Lower-case, space-free unit with one micro sign, so 'umol/L', 'μmol/L' and 'µmol/l' compare equal."""
    u = text.strip().replace(" ", "").replace("\u03bc", "\u00b5").lower()
    # a leading 'u' before mol/g/kat/l is the ASCII spelling of micro
    for base in ("mol", "g/", "kat", "l"):
        if u.startswith("u" + base):
            u = "\u00b5" + u[1:]
    u = u.replace("/umol", "/\u00b5mol").replace("/ul", "/\u00b5l")
    u = u.replace("*10", "x10")
    return u


def field(name: str) -> Field:
    """The Field called `name` (KeyError if unknown: use validation for user input)."""
    return SCHEMA[name]


def schema_markdown() -> str:
    """The schema as a Markdown table (docs/clinical-covariates.md is this text)."""
    rows = ["| field | label | kind | unit | plausible range or values | required |", "| --- | --- | --- | --- | --- | --- |"]
    for f in SCHEMA.values():
        values = f.range_text() if f.range else ("0 / 1" if f.kind == "binary" else " / ".join(map(str, f.allowed)))
        rows.append(f"| `{f.name}` | {f.label} | {f.kind} | {f.unit or ''} | {values} | "
                    f"{'yes' if f.required else 'no'} |")
    return "## Clinical covariates (DELICAITELib.clinical.SCHEMA)\n\n" + "\n".join(rows) + "\n"
