"""The model bundle: its input preparation, its files, and the model folders written before bundles.

Testing/data/legacy_models holds a bare interaction model (the demo model of DELICAITE 0.1) and a
`delicaite cohort train` folder of 0.1 with its cohort, made by the code at commit 9418cd0, with the h
that code gave (float32 inference, hence the 1e-5 tolerance; the bundle predicts in float64).
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from DELICAITELib.bundle import InputPreparation, ModelBundle, fit_bundle, load_bundle, save_bundle
from DELICAITELib.case import CaseEngine
from DELICAITELib.clinical import encoded_columns, validate_record
from DELICAITELib.cohort import column_groups, design_frame, read_cohort, write_cohort
from DELICAITELib.cohort.trained import load_trained
from DELICAITELib.demo import DEMO_CLINICAL
from DELICAITELib.errors import DelicaiteError, ModelFileError
from DELICAITELib.features.spec import FeatureSpec
from DELICAITELib.simulate import simulate_cohort

LEGACY = Path(__file__).resolve().parent / "data" / "legacy_models"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())


def test_a_bare_interaction_model_of_0_1_serves_cases_as_it_did():
    bundle = load_bundle(LEGACY / "interaction_model_v1")
    assert bundle.info["legacy"].startswith("interaction model file")
    assert bundle.feature_spec == FeatureSpec.clinical_only()
    assert bundle.inputs.imputation_rule.startswith("training mean")  # what 0.1's case door filled in
    for name, record in (("demo_clinical", DEMO_CLINICAL),
                         ("demo_clinical_without_alt_crp", {k: v for k, v in DEMO_CLINICAL.items() if k not in ("alt", "crp")})):
        prediction = bundle.predict_case(validate_record(record), {})
        assert prediction.score.h == pytest.approx(EXPECTED["interaction_model_v1"][name]["h"], abs=1e-5)
        assert list(prediction.imputed) == EXPECTED["interaction_model_v1"][name]["imputed"]


def test_a_cohort_folder_of_0_1_loads_as_a_bundle_and_for_evaluation():
    bundle = load_bundle(LEGACY / "cohort_model_v1")
    assert bundle.info["legacy"].startswith("`delicaite cohort train` folder")
    assert bundle.inputs.imputation_rule == "training median" and bundle.threshold is not None
    frame = design_frame(read_cohort(LEGACY / "cohort", check_image_paths=False))
    h = bundle.predictions(frame)["h"].to_numpy()
    assert list(frame["patient_id"]) == EXPECTED["cohort_model_v1"]["patient_id"]
    np.testing.assert_allclose(h, EXPECTED["cohort_model_v1"]["h"], atol=1e-5)
    trained = load_trained(LEGACY / "cohort_model_v1")
    assert trained.names == ["delicaite", "clinical_logistic", "radiomics_gbm", "mlp_radiomics"]
    assert trained.thresholds["delicaite"] == bundle.threshold


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    """A two-member bundle on 200 simulated patients with one made-up image column (a fast fit)."""
    cohort = simulate_cohort(n=200, seed=3)
    folder = write_cohort(cohort, tmp_path_factory.mktemp("cohort") / "c")
    frame = design_frame(read_cohort(folder, check_image_paths=False))
    rng = np.random.default_rng(0)
    frame["AP_original_firstorder_Mean"] = rng.normal(60, 10, len(frame))
    frame.loc[::7, "AP_original_firstorder_Mean"] = np.nan
    train = frame[frame["pd"].notna()].reset_index(drop=True)
    bundle = fit_bundle(train, column_groups(frame), None, ensemble=2, epochs=60, seed=1)
    return bundle, frame


def test_missing_inputs_take_the_training_median_and_are_named(small_bundle):
    bundle, frame = small_bundle
    column = "AP_original_firstorder_Mean"
    median = frame.loc[frame["pd"].notna(), column].median()
    x, imputed = bundle.inputs.prepare(frame)
    assert x[column].isna().sum() == 0 and (x.loc[frame[column].isna(), column] == median).all()
    assert imputed[column].equals(frame[column].isna())
    with pytest.raises(DelicaiteError, match=f"does not have: {column}"):
        bundle.inputs.prepare(frame.drop(columns=column))


def test_saved_bundle_predicts_the_same_and_refuses_mixed_parts(small_bundle, tmp_path):
    bundle, frame = small_bundle
    save_bundle(bundle, tmp_path / "m")
    again = load_bundle(tmp_path / "m")
    pd.testing.assert_frame_equal(again.predictions(frame), bundle.predictions(frame))
    assert again.feature_spec is None and again.inputs.model_columns == bundle.inputs.model_columns
    # a case door cannot compute the features of a table of unknown making: it says so before any image
    with pytest.raises(DelicaiteError, match="feature_spec.json"):
        CaseEngine(again).run("never-read-ap.nii.gz", None, None, DEMO_CLINICAL)
    # an interaction model from another training put into the folder is refused
    other = fit_bundle(frame[frame["pd"].notna()].reset_index(drop=True), column_groups(frame), None, ensemble=2,
                       epochs=30, seed=2)
    save_bundle(other, tmp_path / "other")
    shutil.rmtree(tmp_path / "m" / "interaction")
    shutil.copytree(tmp_path / "other" / "interaction", tmp_path / "m" / "interaction")
    with pytest.raises(ModelFileError, match="mixes two trainings"):
        load_bundle(tmp_path / "m")


def test_input_preparation_refuses_what_cannot_be_imputed():
    with pytest.raises(DelicaiteError, match="not a finite number"):
        InputPreparation(["age"], ["age"], [np.nan])
    with pytest.raises(DelicaiteError, match="1 imputation values for 2"):
        InputPreparation(["age", "alb"], ["age", "alb"], [50.0])


def test_not_a_model_folder_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelFileError, match="not a DELICAITE model folder .found notes.txt"):
        load_bundle(tmp_path)
    with pytest.raises(ModelFileError, match="not found"):
        load_bundle(tmp_path / "missing")


def test_bundle_columns_are_the_model_inputs(small_bundle):
    bundle, _ = small_bundle
    assert isinstance(bundle, ModelBundle)
    assert bundle.inputs.model_columns[:len(encoded_columns())] == encoded_columns()
    assert list(bundle.model.feature_names_in_) == bundle.inputs.model_columns


def test_one_case_runs_the_ensemble_once_for_its_prediction(small_bundle, monkeypatch):
    """Risks, h, its interval, percentile and recommendation come from one pass; the drivers are the
    integrated gradients of that same model (their own computation), not a second prediction."""
    bundle, _ = small_bundle
    calls = []
    for name in ("predict_all", "predict_risks", "interaction_score", "recommend", "predict_risk"):
        original = getattr(bundle.model, name)
        monkeypatch.setattr(bundle.model, name,
                            lambda *args, _name=name, _original=original, **kwargs: (calls.append(_name),
                                                                                      _original(*args, **kwargs))[1])
    prediction = bundle.predict_case(validate_record(DEMO_CLINICAL), {"AP_original_firstorder_Mean": 55.0})
    assert calls == ["predict_all"]
    assert prediction.score.lower <= prediction.score.h <= prediction.score.upper
    assert len(prediction.drivers) == 5
