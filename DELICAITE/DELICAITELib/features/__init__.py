"""Image features of a case: radiomics (pyradiomics or mirp, engines.py) per phase on the three largest tumour slices."""

from .radiomics import DEFAULT_PARAMS, extract_radiomics, load_radiomics_settings  # noqa: F401
