"""Training on a cohort folder: the one entry point `train_cohort`, behind `delicaite cohort train` and
`delicaite train` alike.

`cohort train` splits by centre, trains the DELICAITE bundle and the study's comparators (their
hyper-parameters chosen on a validation share of the training set), fixes Youden thresholds on
training predictions and writes MODEL_DIR. `delicaite train` is the same with every patient in
training and no comparators.

MODEL_DIR: the model bundle (model.json + weights.npz, interaction/, deep_reduction/, features/; see
bundle/files.py), comparators/<name>/, splits.csv, training.json (written last: the folder is complete
when it exists). Internal and external test patients are never looked at here.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn

from .. import __version__ as DELICAITE_VERSION
from ..bundle import fit_bundle, save_bundle
from ..errors import DelicaiteError
from ..features.spec import SPEC_FILE, FeatureSpec
from ..progress import reporter
from ..stats.classification import auc_or_none, youden_threshold
from ..storage import write_text_atomically
from .comparators.files import save_comparator
from .comparators.models import THERAPY_COLUMN, Comparator, fit_estimator, fit_preprocessing, grid, input_matrix
from .design import column_groups, design_frame
from .folder import read_cohort
from .splits import SETS, TRAINING, centre_split, recorded_split, stratified_share
from .trained import COMPARATORS_DIR, DELICAITE, SPLITS_FILE, SUMMARY_FILE, TrainedModels

CLINICAL_ONLY = "clinical covariates (no image features in this cohort)"
QUICK = {"ensemble": 2, "epochs": 150, "mlp_epochs": 60}
FULL = {"ensemble": 20, "epochs": None, "mlp_epochs": 120}  # epochs None: InteractionModel's default
DEFAULT_DEEP_COMPONENTS = 8
RESEARCH_NOTE = "research model trained by `delicaite {command}`: not validated for clinical use"


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
    auc = auc_or_none(y, p)
    if auc is None:
        raise DelicaiteError("a split holds only one outcome class, so no AUC can guide model choice; "
                             "the training centre needs patients with and without PD")
    return auc


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
              "directory": f"{COMPARATORS_DIR}/{spec['name']}"}
    return model, record


def feature_spec_of(features, frame: pd.DataFrame) -> tuple[FeatureSpec | None, str]:
    """The spec the features table was made with (feature_spec.json beside it, as `cohort features`
    writes it), clinical-only without image columns, or None (unknown) with a note saying so."""
    groups = column_groups(frame)
    if not groups["radiomics"] and not groups["deep"]:
        return FeatureSpec.clinical_only(), "clinical covariates only"
    if isinstance(features, (str, Path)) and (Path(features).parent / SPEC_FILE).is_file():
        spec = FeatureSpec.load(Path(features).parent / SPEC_FILE)
        return spec, spec.describe()
    return None, (f"the features table has no {SPEC_FILE} beside it, so the model cannot compute a new case's "
                  "features: `delicaite case` and the Slicer modules will refuse it (make the table with "
                  "`delicaite cohort features`)")


def _all_in_training(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The splits of a run without a held-out test: every patient is in training (those with an unknown
    PD are left out of the fit, as pd_known says)."""
    known = frame["pd"].notna().to_numpy()
    sets = np.full(len(frame), TRAINING, dtype=object)
    splits = pd.DataFrame({"patient_id": frame["patient_id"].to_numpy(), "centre": frame["centre"].astype(str),
                           "set": sets, "pd_known": known.astype(int)})
    info = {"rule": "every patient with a known PD trains (no held-out test set)", "training_centre": None,
            "external_centres": [], "n": {s: int((sets == s).sum()) for s in SETS},
            "n_unknown_pd_left_out_of_training": int((~known).sum()), "n_unknown_pd": int((~known).sum())}
    return splits, info


def train_cohort(cohort_dir, out_dir, features=None, *, by_centre: bool = True, comparators: bool = True,
                 estimator: str = "interaction-network", seed: int = 0, ensemble: int | None = None, epochs: int | None = None, quick: bool = False,
                 internal_share: float = 0.25, validation_share: float = 0.2,
                 deep_components: int = DEFAULT_DEEP_COMPONENTS, cutoff: float = 0.0,
                 propensity_weighting: bool = True, note: str | None = None, progress=None) -> TrainedModels:
    """Train on a cohort folder, write MODEL_DIR and return the models as trained (load_trained(MODEL_DIR)
    reads the same back); `.summary` is training.json's content.

    ``by_centre``: the study's split (largest centre trains, minus an internal test share; the others are
    the external test); False trains on every patient with a known PD. ``comparators``: also the study's
    comparators. ``estimator``: DELICAITE's interaction network or Tian's lasso (bundle/fit.py). Deep
    feature columns (deep_*) enter DELICAITE as their first ``deep_components`` principal
    components fitted on the training set (0: the raw columns); the MLP on deep features always gets the
    raw columns, as in the study."""
    say = reporter(progress)
    budget = QUICK if quick else FULL
    ensemble = budget["ensemble"] if ensemble is None else int(ensemble)
    mlp_epochs = budget["mlp_epochs"] if epochs is None else int(epochs)
    epochs = budget["epochs"] if epochs is None else int(epochs)
    # Training reads covariates, outcomes and (optionally) the features table, never the CTs: a cohort
    # whose images live on another machine trains here.
    frame = design_frame(read_cohort(cohort_dir, check_image_paths=False), features)
    spec, spec_note = feature_spec_of(features, frame)
    if spec is None:
        say(f"warning: {spec_note}")
    if not by_centre:
        splits, split_info = _all_in_training(frame)
    elif isinstance(features, (str, Path)):  # the features folder holds the split deep training used too
        splits, split_info = recorded_split(frame, Path(features).parent, internal_share, seed)
    else:
        splits, split_info = centre_split(frame, internal_share, seed)
    train = frame[(splits["set"] == TRAINING).to_numpy() & frame["pd"].notna().to_numpy()].reset_index(drop=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).unlink(missing_ok=True)  # the folder is incomplete until training.json is back
    splits.to_csv(out / SPLITS_FILE, index=False)
    n = split_info["n"]
    say(f"{len(train)} training patients" + (f" (centre {split_info['training_centre']}), internal test "
                                             f"{n['internal_test']}, external test {n['external_test']}" if by_centre else ""))

    groups = column_groups(frame)
    say(f"DELICAITE ({estimator}" + (f", {ensemble} ensemble members" if estimator == "interaction-network" else "")
        + f") on {spec_note if spec else 'the table columns'}")
    command = "cohort train" if by_centre else "train"
    bundle = fit_bundle(train, groups, spec, estimator=estimator, seed=seed, ensemble=ensemble, epochs=epochs,
                        deep_components=deep_components if groups["deep"] else 0,
                        propensity_weighting=propensity_weighting, cutoff=cutoff,
                        note=note or RESEARCH_NOTE.format(command=command))
    reduction = bundle.inputs.reduction
    if reduction is not None:
        say(f"deep features: {len(groups['deep'])} columns → {len(reduction.names)} principal components "
            f"({100 * reduction.explained_variance_ratio.sum():.0f} % of their variance in the training set)")
    y_train = train["pd"].to_numpy(int)
    p_train = bundle.predict_pd(train)
    bundle.threshold = youden_threshold(y_train, p_train)
    bundle.info = {"trained_by": f"delicaite {command}", "cohort_size": len(frame), "seed": seed}
    save_bundle(bundle, out)
    columns = bundle.inputs.model_columns
    records = {DELICAITE: {"kind": estimator, "inputs": spec_note, "feature_names": columns,
                           "hyperparameters": {k: v for k, v in bundle.model.get_params().items() if k != "device"},
                           "chosen": "fixed defaults (chosen on simulated cohorts), propensity-weighted; no test data used",
                           "training_auc": auc_or_none(y_train, p_train), "threshold": bundle.threshold, "directory": ".",
                           "scaler": "InteractionModel's own, fitted on the training set; imputation: "
                                     + bundle.inputs.imputation_rule}}
    fitted = {}
    if comparators:
        validation, val_rule = stratified_share(train["therapy"].to_numpy(), train["pd"].to_numpy(), validation_share,
                                                seed + 1)
        for comparator_spec in comparator_specs(groups):
            say(f"{comparator_spec['name']}: choosing among {len(grid(comparator_spec['kind'], quick))} settings on "
                "the validation share")
            comparator, record = choose_and_fit(comparator_spec, train, validation, seed=seed, quick=quick,
                                                epochs=mlp_epochs)
            save_comparator(comparator, out / COMPARATORS_DIR / comparator_spec["name"])
            fitted[comparator_spec["name"]] = comparator
            records[comparator_spec["name"]] = record
        validation_info = {"share": validation_share, "n": int(validation.sum()), "stratified_by": val_rule,
                           "seed": seed + 1, "used_for": "hyper-parameter choice of the comparators only"}
    else:
        validation_info = None

    summary = {
        "format": "delicaite-cohort-training", "format_version": 2,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "library_versions": {"delicaite": DELICAITE_VERSION, "scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "command": f"delicaite {command}",
        "cohort": Path(cohort_dir).name, "features": None if not isinstance(features, (str, Path)) else Path(features).name,
        "feature_spec": spec_note,
        "seed": seed, "quick": quick, "ensemble": ensemble, "epochs": epochs, "mlp_epochs": mlp_epochs,
        "splits": split_info,
        "deep_reduction": None if reduction is None else reduction.summary(),
        "validation": validation_info,
        "n_training": len(train), "n_unknown_pd_left_out_of_training": split_info["n_unknown_pd_left_out_of_training"],
        "thresholds": {"rule": "Youden index on training predictions", **{k: r["threshold"] for k, r in records.items()}},
        "names": list(records), "models": records,
    }
    write_text_atomically(out / SUMMARY_FILE, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return TrainedModels(directory=out, splits=splits, summary=summary, bundle=bundle, comparators=fitted,
                         thresholds={DELICAITE: bundle.threshold, **{k: c.threshold for k, c in fitted.items()}})
