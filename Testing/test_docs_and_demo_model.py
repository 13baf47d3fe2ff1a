"""What ships with the package: the generated covariate documentation and the bundled demo model."""

import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from DELICAITELib.clinical import encode, encoded_columns, mapping_markdown
from DELICAITELib.clinical.schema import schema_markdown
from DELICAITELib.demo import DEMO_MODEL_N, DEMO_NOTE, demo_model_dir
from DELICAITELib.model import load_model
from DELICAITELib.simulate import simulate_cohort

DOC = Path(__file__).resolve().parents[1] / "docs" / "clinical-covariates.md"


def test_covariate_documentation_is_current():
    """docs/clinical-covariates.md is generated from the schema and the HCC-TACE-Seg mapping."""
    assert DOC.read_text(encoding="utf-8") == schema_markdown() + "\n" + mapping_markdown(), (
        "regenerate docs/clinical-covariates.md from schema_markdown() + mapping_markdown()")


def test_bundled_demo_model_loads_with_its_checksums():
    model = load_model(demo_model_dir())
    meta = json.loads((demo_model_dir() / "model.json").read_text())
    assert meta["note"] == DEMO_NOTE and model.metadata_["weights_sha256"] == meta["weights_sha256"]
    assert list(model.feature_names_in_) == encoded_columns()
    assert model.training_summary_["n"] == DEMO_MODEL_N


def test_bundled_demo_model_recovers_the_simulated_truth():
    """On fresh simulated patients the demo model agrees with the oracle far above chance."""
    fresh = simulate_cohort(n=2000, seed=99, assignment="randomized")
    h = load_model(demo_model_dir()).interaction_score(encode(fresh.covariates))
    agreement = np.mean(np.where(h < 0, "HAIC", "TACE") == fresh.oracle_best)
    assert agreement > 0.8
    assert spearmanr(h, fresh.true_h).statistic > 0.7
