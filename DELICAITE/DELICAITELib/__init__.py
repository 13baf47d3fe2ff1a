"""DELICAITE core library: every algorithm of the extension, with no Slicer import (except the mrml package).

Sub-packages: io (CT and label maps), slices (three largest tumour slices), preprocessing (the
study's ROI pipeline), clinical (covariate schema), features (radiomics), model (covariate-interaction
network), simulate (cohort with known truth), report, cli.
"""

__version__ = "0.1.0"

from .errors import ClinicalError, DelicaiteError, ImageError, MaskError, ModelFileError  # noqa: F401
