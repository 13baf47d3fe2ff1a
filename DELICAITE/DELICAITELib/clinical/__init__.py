"""Clinical covariates: the schema (units, plausible ranges), validation, model encoding, and the
mapping of the public HCC-TACE-Seg clinical table onto the schema."""

from .encoding import encode, encoded_columns
from .hcc_tace_seg import MAPPING, MISSING_FIELDS, load_hcc_tace_seg, mapping_markdown
from .schema import FIELD_NAMES, SCHEMA, UNIT_ALIASES, WRONG_UNITS, Field
from .validation import validate_record, validate_table, validate_value

__all__ = [
    "Field", "SCHEMA", "FIELD_NAMES", "UNIT_ALIASES", "WRONG_UNITS",
    "validate_record", "validate_table", "validate_value",
    "encode", "encoded_columns",
    "MAPPING", "MISSING_FIELDS", "load_hcc_tace_seg", "mapping_markdown",
]
