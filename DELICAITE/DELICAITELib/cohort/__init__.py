"""A cohort: many patients' covariates, therapy, outcomes and images, and the work done on them.

folder.py       Cohort, read_cohort / write_cohort (manifest.csv + covariates.csv [+ truth.csv])
manifest.py     checking manifest.csv, every problem named by line and column
design.py       the design frame: encoded covariates + a features table, one row per patient
splits.py       by centre (training, internal test, external test) and the validation share
features/       image features of every case (the case engine's stages), resumable and parallel
training.py     train_cohort: the one training entry point (`cohort train` and `train`)
trained.py      a trained model folder loaded for evaluation (bundle + comparators + splits)
deep.py         deep-feature work on the training centre's crops (DINO pretraining, block report, CNNs)
comparators/    the study's comparators (logistic, gradient boosting, MLP), stored without pickle

The face holds the light parts (reading and describing a cohort); training, trained folders, features
and deep work import the models and are imported from their own modules.
"""

from .design import column_groups, design_frame, read_features_table
from .folder import Cohort, read_cohort, write_cohort
from .manifest import ManifestError, read_manifest

__all__ = ["Cohort", "ManifestError", "column_groups", "design_frame", "read_cohort", "read_features_table",
           "read_manifest", "write_cohort"]
