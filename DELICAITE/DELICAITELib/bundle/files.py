"""A model bundle on disk, and the model folders written before bundles existed.

MODEL_DIR/model.json + weights.npz   the bundle (format "delicaite-model-bundle"): feature spec, input
                                     columns, imputation values, threshold, and the checksum of each part
MODEL_DIR/interaction/               the InteractionModel (model/persistence.py)
MODEL_DIR/deep_reduction/            the PCA of the deep features, when the model sees components
MODEL_DIR/features/                  copies of the deep encoder and CNN folder the features were made with

Every part is a checksummed artifact (storage/artifacts.py) and the bundle records each part's
metadata_sha256, so parts from two trainings are refused rather than mixed.

Older folders still load: a bare interaction model (MODEL_DIR/model.json of format
"delicaite-interaction-model", as `delicaite train` and the demo wrote) and a `delicaite cohort train`
folder of 0.1 (MODEL_DIR/delicaite/ + delicaite_inputs/ [+ deep_reduction/]). Their feature spec was
not recorded: clinical columns need none, radiomics columns get the bundled settings (what the case
door of 0.1 used), deep columns cannot be served to a new case.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
from pathlib import Path

import numpy as np

from .. import __version__ as DELICAITE_VERSION
from ..clinical import encoded_columns
from ..errors import ModelFileError
from ..features.deep.reduction import COMPONENT_PREFIX, DeepFeatureReduction
from ..features.radiomics import VERSION_1_PARAMS
from ..features.spec import FeatureSpec
from ..storage import METADATA_FILE, artifact_checksum, read_artifact, write_artifact
from .bundle import RESEARCH_NOTE, ModelBundle
from .inputs import TRAINING_MEAN, TRAINING_MEDIAN, InputPreparation

BUNDLE_FORMAT, BUNDLE_VERSION = "delicaite-model-bundle", 1
INTERACTION_FORMAT = "delicaite-interaction-model"
INTERACTION_DIR, REDUCTION_DIR, FEATURE_FILES_DIR = "interaction", "deep_reduction", "features"
LEGACY_MODEL_DIR, LEGACY_INPUTS_DIR, LEGACY_INPUTS_FORMAT = "delicaite", "delicaite_inputs", "delicaite-model-inputs"
ASSUMED_RADIOMICS = ("not recorded (model made before DELICAITE model bundles): the radiomics settings of that "
                     "release (version 1) assumed")


def save_bundle(bundle: ModelBundle, directory) -> Path:
    """Write the bundle into ``directory`` (parts first, the bundle's own model.json last)."""
    from ..model import save_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_model(bundle.model, directory / INTERACTION_DIR, note=bundle.note)
    parts = {INTERACTION_DIR: bundle.model.metadata_["metadata_sha256"]}
    if bundle.inputs.reduction is not None:
        bundle.inputs.reduction.save(directory / REDUCTION_DIR, note="principal components of the deep features, "
                                                                     "fitted on the training set")
        parts[REDUCTION_DIR] = artifact_checksum(directory / REDUCTION_DIR)
    spec = None if bundle.feature_spec is None else _spec_inside(bundle.feature_spec, directory)
    meta = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "library_versions": {"delicaite": DELICAITE_VERSION, "numpy": np.__version__},
        "note": bundle.note,
        "feature_spec": None if spec is None else spec.to_json(base_dir=directory),
        "inputs": {"raw_columns": list(bundle.inputs.raw_columns), "model_columns": list(bundle.inputs.model_columns),
                   "imputation_rule": bundle.inputs.imputation_rule},
        "threshold": None if bundle.threshold is None else float(bundle.threshold),
        "parts": parts,
        "info": bundle.info,
    }
    written = write_artifact(directory, {"imputation": bundle.inputs.imputation}, meta, BUNDLE_FORMAT, BUNDLE_VERSION)
    bundle.feature_spec, bundle.directory = spec, directory
    bundle.info = {**bundle.info, "bundle_sha256": written["metadata_sha256"]}
    return directory


def _spec_inside(spec: FeatureSpec, directory: Path) -> FeatureSpec:
    """The spec with its encoder and CNN copied byte for byte under ``directory``/features (their
    checksums, which the features were made with, stay the same)."""
    target = directory / FEATURE_FILES_DIR

    def copy(source: str | None, name: str) -> str | None:
        if source is None:
            return None
        source = Path(source)
        destination = target / (name + ("" if source.is_dir() else source.suffix))
        if source.resolve() != destination.resolve():
            target.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.rmtree(destination, ignore_errors=True)
                shutil.copytree(source, destination)
            else:
                shutil.copy2(source, destination)
        return str(destination)

    return FeatureSpec(spec.radiomics, copy(spec.deep_encoder, "encoder"), spec.deep_block, copy(spec.deep_cnn, "cnn"),
                       spec.radiomics_engine)


def load_bundle(path) -> ModelBundle:
    """The bundle in MODEL_DIR (or one of the older model folders, see the module docstring); every
    checksum is verified before anything is used."""
    path = Path(path)
    if path.is_file() and path.name == METADATA_FILE:
        path = path.parent
    if not path.is_dir():
        raise ModelFileError(f"model folder not found: {path}")
    kind = _format_of(path / METADATA_FILE)
    if kind == BUNDLE_FORMAT:
        return _load_current(path)
    if kind == INTERACTION_FORMAT:
        return _load_bare_interaction_model(path)
    if (path / LEGACY_MODEL_DIR / METADATA_FILE).is_file() and (path / LEGACY_INPUTS_DIR).is_dir():
        return _load_cohort_folder_v1(path)
    found = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
    raise ModelFileError(f"{path} is not a DELICAITE model folder (found {found}); give the folder "
                         "`delicaite cohort train` or `delicaite train` wrote")


def _format_of(meta_path: Path) -> str | None:
    """The format a model.json claims (read only to choose the reader, which verifies it)."""
    try:
        return json.loads(meta_path.read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        return None


def _load_current(directory: Path) -> ModelBundle:
    from ..model import load_model

    arrays, meta, meta_path = read_artifact(directory, BUNDLE_FORMAT, BUNDLE_VERSION)
    try:
        parts, inputs = meta["parts"], meta["inputs"]
        for name, expected in parts.items():
            if artifact_checksum(directory / name) != expected:
                raise ModelFileError(f"{directory / name} is not the part this bundle was saved with (checksum "
                                     "differs): the folder mixes two trainings; train again")
        model = load_model(directory / INTERACTION_DIR)
        reduction = DeepFeatureReduction.load(directory / REDUCTION_DIR) if REDUCTION_DIR in parts else None
        preparation = InputPreparation(list(inputs["raw_columns"]), list(inputs["model_columns"]),
                                       arrays["imputation"], str(inputs["imputation_rule"]), reduction)
        spec = None if meta["feature_spec"] is None else FeatureSpec.from_json(meta["feature_spec"], directory)
        threshold = meta["threshold"]
        made_with = _check_made_with(meta, meta_path)
        bundle = ModelBundle(model, preparation, spec, None if threshold is None else float(threshold),
                             str(meta.get("note") or RESEARCH_NOTE),
                             {**dict(meta.get("info") or {}), "bundle_sha256": meta["metadata_sha256"],
                              "created_at": meta.get("created_at"), "made_with": made_with}, directory)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"model file {meta_path} lacks or mistypes an entry ({exc}); train the model again") from None
    _check_columns(bundle, meta_path)
    return bundle


def _check_made_with(meta: dict, meta_path: Path) -> str | None:
    """The DELICAITE version that wrote the bundle; ModelFileError when it is newer than this one (its
    files may mean something this version does not know)."""
    made_with = (meta.get("library_versions") or {}).get("delicaite")
    if made_with is not None and _version_key(str(made_with)) > _version_key(DELICAITE_VERSION):
        raise ModelFileError(f"model file {meta_path} was written by delicaite {made_with}, newer than this "
                             f"delicaite {DELICAITE_VERSION}: update delicaite to use it")
    return made_with


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _check_columns(bundle: ModelBundle, meta_path: Path) -> None:
    names = bundle.model.feature_names_in_
    if names is None or list(names) != list(bundle.inputs.model_columns):
        raise ModelFileError(f"model file {meta_path}: the interaction model's inputs are not the bundle's columns")


def _spec_of_legacy_columns(columns: list[str]) -> tuple[FeatureSpec | None, str]:
    clinical = set(encoded_columns())
    other = [c for c in columns if c not in clinical]
    if not other:
        return FeatureSpec.clinical_only(), "clinical covariates only"
    if all(c.startswith(("AP_", "VP_")) for c in other):
        return FeatureSpec.from_options(VERSION_1_PARAMS, radiomics_engine="pyradiomics (assumed: not recorded)"), \
            ASSUMED_RADIOMICS
    return None, "not recorded (model made before DELICAITE model bundles) and it uses deep features"


def _load_bare_interaction_model(directory: Path) -> ModelBundle:
    from ..model import load_model

    model = load_model(directory)
    names = None if model.feature_names_in_ is None else [str(c) for c in model.feature_names_in_]
    if names is None:
        raise ModelFileError(f"{directory}: the model file has no feature names, so no door can build its inputs")
    spec, how = _spec_of_legacy_columns(names)
    inputs = InputPreparation(names, names, model.scaler_mean_, TRAINING_MEAN)
    meta = model.metadata_
    return ModelBundle(model, inputs, spec, None, str(meta.get("note") or RESEARCH_NOTE),
                       {"legacy": "interaction model file (DELICAITE 0.1)", "feature_spec_note": how}, directory)


def _load_cohort_folder_v1(directory: Path) -> ModelBundle:
    from ..model import load_model

    model = load_model(directory / LEGACY_MODEL_DIR)
    arrays, meta, meta_path = read_artifact(directory / LEGACY_INPUTS_DIR, LEGACY_INPUTS_FORMAT, 1)
    try:
        columns, medians, threshold = [str(c) for c in meta["feature_names"]], arrays["imputation_medians"], meta["threshold"]
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"model file {meta_path} lacks or mistypes an entry ({exc}); train the model again") from None
    reduction = DeepFeatureReduction.load(directory / REDUCTION_DIR) if (directory / REDUCTION_DIR).is_dir() else None
    raw = [c for c in columns if not c.startswith(COMPONENT_PREFIX)] + ([] if reduction is None else reduction.columns)
    spec, how = _spec_of_legacy_columns(raw)
    inputs = InputPreparation(raw, columns, medians, TRAINING_MEDIAN, reduction)
    bundle = ModelBundle(model, inputs, spec, float(threshold), str(model.metadata_.get("note") or RESEARCH_NOTE),
                         {"legacy": "`delicaite cohort train` folder (DELICAITE 0.1)", "feature_spec_note": how},
                         directory)
    _check_columns(bundle, meta_path)
    return bundle
