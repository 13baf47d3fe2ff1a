"""What ships with the package: the generated covariate documentation and the bundled demo model."""

import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from DELICAITELib.bundle import load_bundle
from DELICAITELib.clinical import encode, encoded_columns, mapping_markdown
from DELICAITELib.clinical.schema import schema_markdown
from DELICAITELib.demo import DEMO_MODEL_N, DEMO_NOTE, demo_model_dir
from DELICAITELib.features.spec import FeatureSpec
from DELICAITELib.simulate import simulate_cohort

DOC = Path(__file__).resolve().parents[1] / "docs" / "clinical-covariates.md"


def test_covariate_documentation_is_current():
    """docs/clinical-covariates.md is generated from the schema and the HCC-TACE-Seg mapping."""
    assert DOC.read_text(encoding="utf-8") == schema_markdown() + "\n" + mapping_markdown(), (
        "regenerate docs/clinical-covariates.md from schema_markdown() + mapping_markdown()")


def test_bundled_demo_model_is_a_checksummed_bundle_of_clinical_inputs():
    bundle = load_bundle(demo_model_dir())
    meta = json.loads((demo_model_dir() / "model.json").read_text())
    assert meta["format"] == "delicaite-model-bundle" and meta["note"] == DEMO_NOTE == bundle.note
    assert bundle.info["bundle_sha256"] == meta["metadata_sha256"]
    assert bundle.inputs.model_columns == encoded_columns() == list(bundle.model.feature_names_in_)
    assert bundle.feature_spec == FeatureSpec.clinical_only()  # no image features: the case door computes none
    assert bundle.model.training_summary_["n"] == DEMO_MODEL_N
    assert bundle.inputs.imputation_rule == "training median"
    # no simulated patient's id travels with the package
    assert not (demo_model_dir() / "splits.csv").exists() and not (demo_model_dir() / "training.json").exists()


def test_bundled_demo_model_recovers_the_simulated_truth():
    """On fresh simulated patients the demo model agrees with the oracle far above chance."""
    fresh = simulate_cohort(n=2000, seed=99, assignment="randomized")
    h = load_bundle(demo_model_dir()).predictions(encode(fresh.covariates))["h"].to_numpy()
    agreement = np.mean(np.where(h < 0, "HAIC", "TACE") == fresh.oracle_best)
    assert agreement > 0.8
    assert spearmanr(h, fresh.true_h).statistic > 0.7
