"""`delicaite cohort train` on a simulated cohort with a known truth: splits by centre, preprocessing and
model choice from training data only, exact save/load, and DELICAITE finding the oracle therapy."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from DELICAITELib.cli import main
from DELICAITELib.cohort import read_cohort, write_cohort
from DELICAITELib.cohort import design_frame
from DELICAITELib.cohort.trained import load_trained
from DELICAITELib.cohort import training
from DELICAITELib.cohort.comparators.models import input_matrix
from DELICAITELib.errors import ModelFileError
from DELICAITELib.storage import read_artifact
from DELICAITELib.simulate import simulate_cohort

TEST_SETS = ("internal_test", "external_test")


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    return write_cohort(simulate_cohort(900, seed=3), tmp_path_factory.mktemp("cohort") / "sim")


@pytest.fixture(scope="module")
def trained(cohort_dir, tmp_path_factory):
    return training.train_cohort(cohort_dir, tmp_path_factory.mktemp("model") / "m", quick=True)


@pytest.fixture(scope="module")
def frame(cohort_dir):
    return design_frame(read_cohort(cohort_dir))


def test_model_dir_layout_and_splits(trained, frame):
    d = trained.directory
    assert trained.names == ["delicaite", "clinical_logistic", "radiomics_gbm", "mlp_radiomics"]  # no deep_ columns
    for name in trained.names[1:]:
        assert (d / "comparators" / name / "weights.npz").is_file() and (d / "comparators" / name / "model.json").is_file()
    splits = pd.read_csv(d / "splits.csv", dtype={"patient_id": str})
    assert list(splits["patient_id"]) == list(frame["patient_id"])
    assert set(splits.loc[frame["centre"] != "C1", "set"]) == {"external_test"}
    assert set(splits.loc[frame["centre"] == "C1", "set"]) == {"training", "internal_test"}
    summary = json.loads((d / "training.json").read_text())
    assert summary["n_training"] == (splits["set"] == "training").sum() == 484
    assert summary["n_unknown_pd_left_out_of_training"] == 0
    for name in trained.names[1:]:
        assert "no image features" in summary["models"][name]["inputs"] or name == "clinical_logistic"
        assert load_trained(d).comparators[name].info["inputs"] == summary["models"][name]["inputs"]


def test_scalers_are_fitted_on_training_rows_only(trained, frame):
    train = frame[(trained.splits["set"] == "training").to_numpy()]
    loaded = load_trained(trained.directory)
    for name, comp in loaded.comparators.items():
        np.testing.assert_allclose(comp.mean, input_matrix(train, comp.columns).mean(axis=0), rtol=1e-12, atol=1e-12)
        assert not np.allclose(comp.mean, input_matrix(frame, comp.columns).mean(axis=0), rtol=1e-6)
    x = train[loaded.bundle.inputs.model_columns].to_numpy(float)
    np.testing.assert_allclose(loaded.bundle.model.scaler_mean_, x.mean(axis=0), rtol=1e-12, atol=1e-12)


def test_save_load_predicts_exactly_as_in_memory(trained, frame):
    loaded = load_trained(trained.directory)
    assert loaded.names == trained.names and loaded.thresholds == trained.thresholds
    for name in trained.names:
        assert np.array_equal(loaded.predict_pd(name, frame), trained.predict_pd(name, frame)), name
    assert np.array_equal(loaded.bundle.predictions(frame)["h"].to_numpy(),
                          trained.bundle.predictions(frame)["h"].to_numpy())


def test_tampered_comparator_file_is_refused(trained, tmp_path):
    copy = shutil.copytree(trained.directory, tmp_path / "m")
    path = copy / "comparators" / "clinical_logistic" / "weights.npz"
    arrays = dict(np.load(path))
    arrays["coef"][0] *= 1.01
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="sha256"):
        load_trained(copy)


def test_delicaite_finds_the_oracle_therapy_and_predicts_pd(trained, frame, cohort_dir):
    oracle = read_cohort(cohort_dir).oracle_best
    sets = trained.splits["set"].to_numpy()
    for name in TEST_SETS:
        rows = sets == name
        agree = (trained.bundle.predictions(frame[rows])["recommendation"].to_numpy() == oracle[rows]).mean()
        assert agree > 0.7, (name, agree)
    ext = sets == "external_test"
    assert roc_auc_score(frame["pd"][ext], trained.predict_pd("delicaite", frame[ext])) > 0.6
    for name in trained.names[1:]:  # every comparator learned something that carries to the other centres
        assert roc_auc_score(frame["pd"][ext], trained.predict_pd(name, frame[ext])) > 0.6, name


def _arrays(model_dir, name):
    fmt = ("delicaite-interaction-model", 1) if name == "delicaite" else ("delicaite-comparator", 1)
    path = model_dir / "interaction" if name == "delicaite" else model_dir / "comparators" / name
    return read_artifact(path, *fmt)[0]


def test_model_choice_never_sees_test_labels(cohort_dir, tmp_path, monkeypatch):
    """Flip the PD of every internal and external test patient (splits held fixed): the chosen
    hyper-parameters, thresholds and saved weights do not change."""
    cohort = read_cohort(cohort_dir)
    first = training.train_cohort(cohort_dir, tmp_path / "a", quick=True, ensemble=1, epochs=40)
    test = first.splits["set"].isin(TEST_SETS).to_numpy()
    cohort.pd = np.where(test, 1 - cohort.pd, cohort.pd)
    flipped_dir = write_cohort(cohort, tmp_path / "flipped")
    fixed = first.splits.copy()
    monkeypatch.setattr(training, "centre_split", lambda frame, share, seed: (fixed, first.summary["splits"]))
    second = training.train_cohort(flipped_dir, tmp_path / "b", quick=True, ensemble=1, epochs=40)
    for name in first.names:
        a, b = first.summary["models"][name], second.summary["models"][name]
        assert a.get("chosen") == b.get("chosen") and a["threshold"] == b["threshold"]
        assert a.get("grid") == b.get("grid")  # even the validation scores of every setting
        wa, wb = _arrays(tmp_path / "a", name), _arrays(tmp_path / "b", name)
        assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa), name


def _signal_features(cohort_dir, rng):
    """Image-like features that carry the truth (g and h with noise), one pure-noise column, one deep
    feature; five patients have none (a failed extraction), so the training medians fill them in."""
    truth = pd.read_csv(cohort_dir / "truth.csv", dtype={"patient_id": str})
    n = len(truth)
    feats = pd.DataFrame({"patient_id": truth["patient_id"],
                          "VP_original_glrlm_LongRunHighGrayLevelEmphasis": truth["true_g"] + rng.normal(0, 0.15, n),
                          "AP_original_firstorder_Mean": truth["true_h"] + rng.normal(0, 0.3, n),
                          "AP_original_shape_Sphericity": rng.normal(0, 1, n),
                          "deep_block4_0": truth["true_g"] + rng.normal(0, 0.5, n)})
    return feats.iloc[5:]


@pytest.mark.filterwarnings("ignore:manifest.csv.*empty pd")
def test_cli_trains_on_a_simulate_folder_and_on_a_features_table(tmp_path, capsys):
    cohort_dir = tmp_path / "sim"
    assert main(["simulate", "--n", "900", "--seed", "3", "--out", str(cohort_dir)]) == 0
    # a few patients with unknown PD are left out of training and counted
    manifest = pd.read_csv(cohort_dir / "manifest.csv", dtype=str, keep_default_na=False)
    manifest.loc[:3, "pd"] = ""
    manifest.to_csv(cohort_dir / "manifest.csv", index=False)
    assert main(["cohort", "train", "--cohort", str(cohort_dir), "--out", str(tmp_path / "plain"), "--quick",
                 "--ensemble", "1", "--epochs", "40"]) == 0
    plain = load_trained(tmp_path / "plain")
    assert plain.summary["splits"]["n_unknown_pd"] == 4 and plain.summary["n_unknown_pd_left_out_of_training"] >= 1
    assert not plain.splits.loc[:3, "set"].eq("training").any()

    feats = _signal_features(cohort_dir, np.random.default_rng(0))
    feats.to_csv(tmp_path / "features.csv", index=False)
    assert main(["cohort", "train", "--cohort", str(cohort_dir), "--out", str(tmp_path / "feat"), "--quick",
                 "--features", str(tmp_path / "features.csv"), "--ensemble", "1", "--epochs", "40"]) == 0
    assert "mlp_deep" in capsys.readouterr().out
    models = load_trained(tmp_path / "feat")
    assert models.names == ["delicaite", "clinical_logistic", "radiomics_gbm", "mlp_radiomics", "mlp_deep"]
    gbm = models.comparators["radiomics_gbm"]
    assert gbm.columns == list(feats.columns[1:4]) + ["therapy_haic"] and gbm.info["inputs"].startswith("3 image feature")
    assert models.comparators["mlp_deep"].columns == ["deep_block4_0", "therapy_haic"]
    assert "AP_original_firstorder_Mean" in models.bundle.inputs.model_columns
    frame = design_frame(read_cohort(cohort_dir), tmp_path / "features.csv")
    ext = (models.splits["set"] == "external_test").to_numpy() & frame["pd"].notna().to_numpy()
    y = frame["pd"][ext]
    auc_feat = roc_auc_score(y, models.predict_pd("radiomics_gbm", frame[ext]))
    # therapy alone predicts PD well (HAIC controls disease more often); the image features add to it
    auc_therapy = roc_auc_score(y, frame["therapy"][ext] == "TACE")
    assert auc_feat > auc_therapy + 0.05, (auc_feat, auc_therapy)
    # the model really uses the signal: shuffling the h-like column costs discrimination, the noise column not
    drops = {}
    for col in ("AP_original_firstorder_Mean", "AP_original_shape_Sphericity"):
        shuffled = frame[ext].copy()
        shuffled[col] = np.random.default_rng(1).permutation(shuffled[col].to_numpy())
        drops[col] = auc_feat - roc_auc_score(y, models.predict_pd("radiomics_gbm", shuffled))
    assert drops["AP_original_firstorder_Mean"] > 0.05 and drops["AP_original_shape_Sphericity"] < 0.03, drops


def test_cli_reports_bad_features_table(cohort_dir, tmp_path, capsys):
    pd.DataFrame({"patient_id": ["SIM0001"], "AP_original_x": ["high"]}).to_csv(tmp_path / "f.csv", index=False)
    assert main(["cohort", "train", "--cohort", str(cohort_dir), "--out", str(tmp_path / "m"),
                 "--features", str(tmp_path / "f.csv")]) == 2
    assert "non-numeric" in capsys.readouterr().err
