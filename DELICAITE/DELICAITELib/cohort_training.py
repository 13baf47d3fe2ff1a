"""`delicaite cohort train`: split by centre, choose each comparator's hyper-parameters on the validation
share of the training set, fit the final models on the whole training set, fix Youden thresholds on
training predictions, and write MODEL_DIR.

MODEL_DIR: splits.csv, delicaite/ (InteractionModel), delicaite_inputs/ (its columns, training medians and
threshold), comparators/<name>/ (weights.npz + model.json each), training.json (written last: the folder
is complete when it exists). Internal and external test patients are never looked at here.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.metrics import roc_auc_score

from . import __version__ as DELICAITE_VERSION
from .cohort import read_cohort
from .cohort_models import (
    DEEP_REDUCTION,
    DEFAULT_DEEP_COMPONENTS,
    DELICAITE,
    SPLITS_FILE,
    SUMMARY_FILE,
    TrainedModels,
    column_groups,
    delicaite_inputs,
    design_frame,
)
from .comparators.files import save_comparator, save_inputs
from .comparators.models import (
    THERAPY_COLUMN,
    Comparator,
    fit_estimator,
    fit_preprocessing,
    grid,
    input_matrix,
)
from .comparators.splits import TRAINING, centre_split, stratified_share
from .errors import DelicaiteError
from .stats.classification import youden_threshold

CLINICAL_ONLY = "clinical covariates (no image features in this cohort)"
QUICK = {"ensemble": 2, "epochs": 150, "mlp_epochs": 60}
FULL = {"ensemble": 20, "epochs": None, "mlp_epochs": 120}  # epochs None: InteractionModel's default


def comparator_specs(groups: dict[str, list[str]]) -> list[dict]:
    """Which comparators the available columns allow, and what each one sees."""
    image = groups["radiomics"]
    image_note = f"{len(image)} image feature columns (radiomics)" if image else CLINICAL_ONLY
    specs = [{"name": "clinical_logistic", "kind": "logistic", "columns": groups["clinical"],
              "inputs": "clinical covariates"},
             {"name": "radiomics_gbm", "kind": "gbm", "columns": image or groups["clinical"], "inputs": image_note},
             {"name": "mlp_radiomics", "kind": "mlp", "columns": image or groups["clinical"], "inputs": image_note}]
    if groups["deep"]:
        specs.append({"name": "mlp_deep", "kind": "mlp", "columns": groups["deep"],
                      "inputs": f"{len(groups['deep'])} deep feature columns"})
    for spec in specs:
        spec["columns"] = [*spec["columns"], THERAPY_COLUMN]  # therapy is an input of every comparator
    return specs


def _auc(y, p) -> float:
    if len(np.unique(y)) < 2:
        raise DelicaiteError("a split holds only one outcome class, so no AUC can guide model choice; "
                             "the training centre needs patients with and without PD")
    return float(roc_auc_score(y, p))


def _fit(spec: dict, x: np.ndarray, y: np.ndarray, params: dict, seed: int, epochs: int) -> Comparator:
    medians, mean, scale = fit_preprocessing(x)
    xs = (np.where(np.isnan(x), medians, x) - mean) / scale
    _, arrays = fit_estimator(spec["kind"], xs, y, params, seed, epochs)
    return Comparator(name=spec["name"], kind=spec["kind"], columns=list(spec["columns"]), medians=medians,
                      mean=mean, scale=scale, params=dict(params), arrays=arrays)


def choose_and_fit(spec: dict, train: pd.DataFrame, validation: np.ndarray, *, seed: int, quick: bool,
                   epochs: int) -> tuple[Comparator, dict]:
    """Grid search on the validation share (preprocessing fitted on the rest), then the chosen
    hyper-parameters refitted on the whole training set, with its Youden threshold."""
    x, y = input_matrix(train, spec["columns"]), train["pd"].to_numpy(int)
    scores = []
    for params in grid(spec["kind"], quick):
        trial = _fit(spec, x[~validation], y[~validation], params, seed, epochs)
        scores.append({"hyperparameters": params,
                       "validation_auc": _auc(y[validation], trial.predict_pd(train[validation]))})
    best = max(range(len(scores)), key=lambda i: scores[i]["validation_auc"])  # first of equal scores
    model = _fit(spec, x, y, scores[best]["hyperparameters"], seed, epochs)
    p_train = model.predict_pd(train)
    model.threshold = youden_threshold(y, p_train)
    model.info = {"inputs": spec["inputs"], "chosen_on": "validation share of the training set",
                  "validation_auc": scores[best]["validation_auc"], "training_auc": _auc(y, p_train),
                  "mlp_epochs": epochs if spec["kind"] == "mlp" else None}
    record = {"kind": spec["kind"], "inputs": spec["inputs"], "feature_names": model.columns,
              "grid": scores, "chosen": scores[best]["hyperparameters"],
              "validation_auc": scores[best]["validation_auc"], "training_auc": model.info["training_auc"],
              "threshold": model.threshold, "scaler": "mean/scale and imputation medians of the training set",
              "directory": f"comparators/{spec['name']}"}
    return model, record


def fit_delicaite(train: pd.DataFrame, columns: list[str], *, seed: int, ensemble: int, epochs: int | None):
    """The interaction model on the training set, weighted by the inverse propensity of the therapy received."""
    from .model import InteractionModel

    medians = train[columns].median().fillna(0.0).to_numpy(float)
    x = delicaite_inputs(train, columns, medians)
    params = {"n_ensemble": ensemble, "propensity_weighting": True, "random_state": seed}
    if epochs is not None:
        params["epochs"] = epochs
    model = InteractionModel(**params).fit(x, train["therapy"].to_numpy(), train["pd"].to_numpy(int))
    p_train = model.predict_risk(x, train["therapy"].to_numpy())
    return model, medians, youden_threshold(train["pd"].to_numpy(int), p_train), _auc(train["pd"].to_numpy(int), p_train)


def train_cohort_models(cohort_dir, out_dir, features=None, *, seed: int = 0, ensemble: int | None = None,
                        epochs: int | None = None, quick: bool = False, internal_share: float = 0.25,
                        validation_share: float = 0.2, deep_components: int = DEFAULT_DEEP_COMPONENTS,
                        progress=None) -> TrainedModels:
    """Train DELICAITE and the comparators on a cohort folder, write MODEL_DIR and return the models as
    trained (in memory; load_trained(MODEL_DIR) reads the same back); `.summary` is training.json's content.

    Deep feature columns (deep_*) enter DELICAITE as their first ``deep_components`` principal components,
    fitted on the training set (features/deep/reduction.py); 0 gives it the raw columns. The MLP on deep
    features always gets the raw columns, as in the study."""
    from .model import save_model

    say = progress or (lambda message: None)
    budget = QUICK if quick else FULL
    ensemble = budget["ensemble"] if ensemble is None else int(ensemble)
    mlp_epochs = budget["mlp_epochs"] if epochs is None else int(epochs)
    epochs = budget["epochs"] if epochs is None else int(epochs)
    # Training reads covariates, outcomes and (optionally) the features table, never the CTs: a cohort
    # whose images live on another machine trains here.
    frame = design_frame(read_cohort(cohort_dir, check_image_paths=False), features)
    splits, split_info = centre_split(frame, internal_share, seed)
    train = frame[(splits["set"] == TRAINING).to_numpy()].reset_index(drop=True)
    validation, val_rule = stratified_share(train["therapy"].to_numpy(), train["pd"].to_numpy(), validation_share, seed + 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits.to_csv(out / SPLITS_FILE, index=False)
    n = split_info["n"]
    say(f"training centre {split_info['training_centre']}: {len(train)} training patients ({int(validation.sum())} "
        f"of them for model choice), internal test {n['internal_test']}, external test {n['external_test']}")

    groups = column_groups(frame)
    reduction = None
    deep_inputs = groups["deep"]
    if groups["deep"] and deep_components:
        from .features.deep.reduction import DeepFeatureReduction

        reduction = DeepFeatureReduction.fit(train, groups["deep"], deep_components, seed=seed)
        reduction.save(out / DEEP_REDUCTION, note="principal components of the deep features, fitted on the training set")
        train = reduction.with_components(train)
        deep_inputs = reduction.names
        say(f"deep features: {len(groups['deep'])} columns → {len(deep_inputs)} principal components "
            f"({100 * reduction.explained_variance_ratio.sum():.0f} % of their variance in the training set)")
    columns = groups["clinical"] + groups["radiomics"] + deep_inputs
    say(f"DELICAITE: {ensemble} ensemble members on {len(columns)} inputs")
    model, medians, threshold, train_auc = fit_delicaite(train, columns, seed=seed, ensemble=ensemble, epochs=epochs)
    save_model(model, out / DELICAITE, note="research model trained by `delicaite cohort train`: not validated for clinical use")
    save_inputs(out / "delicaite_inputs", columns, medians, threshold, "inputs of the interaction model in delicaite/")
    comparators = {}
    records = {DELICAITE: {"kind": "interaction", "inputs": "clinical covariates" + (" + image features" if len(columns) > len(groups["clinical"]) else ""),
                           "feature_names": columns, "hyperparameters": {k: v for k, v in model.get_params().items() if k != "device"},
                           "chosen": "fixed defaults (chosen on simulated cohorts), propensity-weighted; no test data used",
                           "training_auc": train_auc, "threshold": threshold, "directory": DELICAITE,
                           "scaler": "InteractionModel's own, fitted on the training set; imputation medians of the training set"}}
    for spec in comparator_specs(groups):
        say(f"{spec['name']}: choosing among {len(grid(spec['kind'], quick))} settings on the validation share")
        comparator, record = choose_and_fit(spec, train, validation, seed=seed, quick=quick, epochs=mlp_epochs)
        save_comparator(comparator, out / "comparators" / spec["name"])
        comparators[spec["name"]] = comparator
        records[spec["name"]] = record

    summary = {
        "format": "delicaite-cohort-training", "format_version": 1,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "library_versions": {"delicaite": DELICAITE_VERSION, "scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "cohort": str(cohort_dir), "features": None if features is None or not isinstance(features, (str, Path)) else str(features),
        "seed": seed, "quick": quick, "ensemble": ensemble, "epochs": epochs, "mlp_epochs": mlp_epochs,
        "splits": split_info,
        "deep_reduction": None if reduction is None else {"directory": DEEP_REDUCTION, **reduction.summary()},
        "validation": {"share": validation_share, "n": int(validation.sum()), "stratified_by": val_rule, "seed": seed + 1,
                       "used_for": "hyper-parameter choice of the comparators only"},
        "n_training": len(train), "n_unknown_pd_left_out_of_training": split_info["n_unknown_pd_left_out_of_training"],
        "thresholds": {"rule": "Youden index on training predictions", **{k: r["threshold"] for k, r in records.items()}},
        "names": list(records), "models": records,
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return TrainedModels(directory=out, splits=splits, summary=summary, delicaite=model, delicaite_columns=columns,
                         delicaite_medians=medians, comparators=comparators, deep_reduction=reduction,
                         thresholds={DELICAITE: threshold, **{k: c.threshold for k, c in comparators.items()}})
