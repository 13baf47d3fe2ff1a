"""Fitting a model bundle on training patients: the input preparation, then the interaction model."""

from __future__ import annotations

import pandas as pd

from ..errors import DelicaiteError
from ..features.spec import FeatureSpec
from .bundle import RESEARCH_NOTE, ModelBundle
from .inputs import InputPreparation


ESTIMATORS = ("interaction-network", "tian-lasso")


def fit_bundle(train: pd.DataFrame, columns: dict[str, list[str]], feature_spec: FeatureSpec | None, *,
               estimator: str = "interaction-network", seed: int = 0, ensemble: int = 20, epochs: int | None = None,
               deep_components: int = 0, propensity_weighting: bool = True, cutoff: float = 0.0,
               note: str = RESEARCH_NOTE) -> ModelBundle:
    """A bundle fitted on ``train`` (design-frame rows with therapy and a known pd): ``columns`` groups the
    raw inputs as {"clinical", "radiomics", "deep"}; deep columns enter as ``deep_components`` principal
    components (0: raw). ``estimator``: DELICAITE's interaction network (ensemble size ``ensemble``,
    ``epochs``) or Tian's modified-covariate lasso. Inverse-propensity weighted unless told otherwise."""
    from ..model import InteractionModel, TianLasso

    if estimator not in ESTIMATORS:
        raise DelicaiteError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    inputs = InputPreparation.fit(train, columns["clinical"], columns["radiomics"], columns["deep"],
                                  deep_components=deep_components, seed=seed)
    x, _ = inputs.prepare(train)
    if estimator == "tian-lasso":
        model = TianLasso(propensity_weighting=propensity_weighting, cutoff=cutoff, random_state=seed)
    else:
        params = {"n_ensemble": int(ensemble), "propensity_weighting": propensity_weighting, "cutoff": cutoff,
                  "random_state": seed}
        if epochs is not None:
            params["epochs"] = int(epochs)
        model = InteractionModel(**params)
    model.fit(x, train["therapy"].to_numpy(), train["pd"].to_numpy(int))
    return ModelBundle(model, inputs, feature_spec, note=note)
