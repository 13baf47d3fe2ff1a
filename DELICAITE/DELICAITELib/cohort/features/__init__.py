"""Image features for every case of a cohort, resumable and parallel (local processes or a Dask cluster).

`extract_cohort_features(cohort_dir, out_dir, workers=..., scheduler=...)` runs `extract_case_features`
(the case engine's first two stages → ``cases/<patient_id>.json``) for each manifest row with images,
assembles ``features.csv`` and writes the feature spec beside it (``feature_spec.json``).
"""

from .case_file import extract_case_features, read_case_file
from .run import CASES_DIR, FAILURES_FILE, FEATURES_FILE, FeatureRun, assemble_features, extract_cohort_features

__all__ = ["CASES_DIR", "FAILURES_FILE", "FEATURES_FILE", "FeatureRun", "assemble_features", "extract_case_features",
           "extract_cohort_features", "read_case_file"]
