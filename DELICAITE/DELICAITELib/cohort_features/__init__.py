"""Radiomics for every case of a cohort, resumable and parallel (local processes or a Dask cluster).

`extract_cohort_features(cohort_dir, out_dir, workers=..., scheduler=...)` runs
`extract_case_features` (one case → ``cases/<patient_id>.json``) for each manifest row with images
and assembles ``features.csv``; `read_features` reads it back.
"""

from .case import extract_case_features, read_case_file
from .run import FEATURES_FILE, FAILURES_FILE, FeatureRun, assemble_features, extract_cohort_features, read_features

__all__ = ["extract_case_features", "read_case_file", "FEATURES_FILE", "FAILURES_FILE", "FeatureRun",
           "assemble_features", "extract_cohort_features", "read_features"]
