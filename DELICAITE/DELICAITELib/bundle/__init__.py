"""The model bundle: the interaction model together with its input preparation, as every door serves it.

bundle.py   ModelBundle: feature spec, input preparation, the model, threshold; one patient or a table
inputs.py   raw inputs → deep components → model columns → imputation, fitted on training patients
fit.py      fit_bundle on a training design frame
files.py    save_bundle / load_bundle (and the model folders of DELICAITE 0.1)
"""

from .bundle import INTERVAL_LEVEL, ModelBundle
from .files import load_bundle, save_bundle
from .fit import fit_bundle
from .inputs import InputPreparation

__all__ = ["INTERVAL_LEVEL", "InputPreparation", "ModelBundle", "fit_bundle", "load_bundle", "save_bundle"]
