"""Deep features reduced to principal components fitted on the training patients only, and their use in
`delicaite cohort train` / evaluation (features/deep/reduction.py)."""

import numpy as np
import pandas as pd
import pytest

from DELICAITELib.cohort import training
from DELICAITELib.cli import main
from DELICAITELib.cohort import read_cohort, write_cohort
from DELICAITELib.cohort import design_frame
from DELICAITELib.cohort.trained import load_trained
from DELICAITELib.errors import DelicaiteError, ModelFileError
from DELICAITELib.features.deep.reduction import DeepFeatureReduction
from DELICAITELib.simulate import simulate_cohort


def latent_table(n: int, n_columns: int, seed: int, shift: float = 0.0):
    """Deep-like columns driven by 3 latent factors (each column: loadings · z + unit noise); returns
    (frame of deep_* columns, z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3)) * np.array([3.0, 2.0, 1.5])
    loadings = np.random.default_rng(99).normal(size=(3, n_columns))  # the same columns in every call
    x = z @ loadings + rng.normal(size=(n, n_columns)) + shift
    return pd.DataFrame(x, columns=[f"deep_vit_b4_ap_cls_{k:03d}" for k in range(n_columns)]), z


def canonical_fit(scores: np.ndarray, z: np.ndarray) -> float:
    """Smallest R² of a latent factor regressed on the scores: 1 when the scores span the latent space."""
    design = np.column_stack([np.ones(len(scores)), scores])
    r2 = []
    for k in range(z.shape[1]):
        coef, *_ = np.linalg.lstsq(design, z[:, k], rcond=None)
        r2.append(1 - np.var(z[:, k] - design @ coef) / np.var(z[:, k]))
    return min(r2)


def test_components_recover_the_latent_space_from_training_rows_only():
    train, z_train = latent_table(200, 300, seed=0)
    test, z_test = latent_table(100, 300, seed=1, shift=5.0)  # shifted test patients must not move the fit
    reduction = DeepFeatureReduction.fit(train, list(train.columns), n_components=3)
    assert reduction.names == ["deep_pc01", "deep_pc02", "deep_pc03"]
    np.testing.assert_allclose(reduction.mean, train.to_numpy().mean(axis=0), rtol=1e-12, atol=1e-12)
    assert canonical_fit(reduction.transform(test).to_numpy(), z_test) > 0.95
    assert canonical_fit(reduction.transform(train).to_numpy(), z_train) > 0.95
    # the three factors dominate: the first three components explain most of the variance, in order
    ratio = reduction.explained_variance_ratio
    assert ratio.sum() > 0.8 and np.all(np.diff(ratio) <= 0)
    # the sign of each component is fixed (largest loading positive), so a refit on a copy agrees exactly
    again = DeepFeatureReduction.fit(train.copy(), list(train.columns), n_components=3)
    np.testing.assert_allclose(again.components, reduction.components)
    assert np.all(reduction.components[np.arange(3), np.abs(reduction.components).argmax(axis=1)] > 0)


def test_missing_values_and_bad_input():
    train, _ = latent_table(50, 20, seed=2)
    train.iloc[3, 5] = np.nan  # one failed column: the training median fills it in
    reduction = DeepFeatureReduction.fit(train, list(train.columns), n_components=30)
    assert len(reduction.names) == 20  # no more components than columns (nor than patients − 1)
    rows = train.iloc[:5].copy()
    rows.iloc[1] = np.nan  # a patient without any deep feature stays missing, not average
    scores = reduction.transform(rows)
    assert scores.iloc[1].isna().all() and scores.drop(index=rows.index[1]).notna().all().all()
    with pytest.raises(DelicaiteError, match="lacks .* deep feature column"):
        reduction.transform(train.drop(columns=train.columns[0]))
    with pytest.raises(DelicaiteError, match="at least 3"):
        DeepFeatureReduction.fit(train.iloc[:2], list(train.columns))
    with pytest.raises(DelicaiteError, match="at least 1"):
        DeepFeatureReduction.fit(train, list(train.columns), n_components=0)


def test_saved_reduction_loads_exactly_and_refuses_a_tampered_file(tmp_path):
    train, _ = latent_table(80, 40, seed=3)
    reduction = DeepFeatureReduction.fit(train, list(train.columns), n_components=4)
    reduction.save(tmp_path / "r")
    loaded = DeepFeatureReduction.load(tmp_path / "r")
    pd.testing.assert_frame_equal(loaded.transform(train), reduction.transform(train))
    weights = tmp_path / "r" / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        DeepFeatureReduction.load(tmp_path / "r")


@pytest.fixture(scope="module")
def cohort_with_deep_features(tmp_path_factory):
    """A simulated cohort (known h) and 300 deep-like columns that all carry h weakly plus noise."""
    cohort_dir = write_cohort(simulate_cohort(900, seed=3), tmp_path_factory.mktemp("cohort") / "sim")
    truth = pd.read_csv(cohort_dir / "truth.csv", dtype={"patient_id": str})
    rng = np.random.default_rng(5)
    n, d = len(truth), 300
    h = (truth["true_h"] - truth["true_h"].mean()) / truth["true_h"].std()
    x = np.outer(h, rng.uniform(0.2, 0.6, d)) + rng.normal(size=(n, d))
    features = pd.DataFrame(x, columns=[f"deep_vit_b4_vp_patch_{k:03d}" for k in range(d)])
    features.insert(0, "patient_id", truth["patient_id"])
    path = cohort_dir / "deep_features.csv"
    features.to_csv(path, index=False)
    return cohort_dir, path, truth


def test_cohort_training_reduces_deep_features_on_the_training_set(cohort_with_deep_features, tmp_path):
    cohort_dir, features, truth = cohort_with_deep_features
    trained = training.train_cohort(cohort_dir, tmp_path / "m", features, quick=True, ensemble=1, epochs=40,
                                           deep_components=4)
    reduction = trained.bundle.inputs.reduction
    assert reduction.names == ["deep_pc01", "deep_pc02", "deep_pc03", "deep_pc04"]
    assert [c for c in trained.bundle.inputs.model_columns if c.startswith("deep_")] == reduction.names
    # fitted on the training centre's patients only
    frame = design_frame(read_cohort(cohort_dir), features)
    in_training = (trained.splits["set"] == "training").to_numpy()
    np.testing.assert_allclose(reduction.mean, frame.loc[in_training, reduction.columns].to_numpy().mean(axis=0))
    assert reduction.extra["n_training_patients"] == int(in_training.sum()) < len(frame)
    # the first component is the signal every column shares: h, up to sign and noise
    pc1 = trained.bundle.inputs.prepare(frame)[0]["deep_pc01"].to_numpy()
    assert abs(np.corrcoef(pc1, truth["true_h"])[0, 1]) > 0.9
    # the comparator on deep features keeps the raw columns
    assert len(trained.comparators["mlp_deep"].columns) == 301
    # the model folder gives the same inputs and scores back
    loaded = load_trained(tmp_path / "m")
    assert loaded.summary["deep_reduction"]["components"] == reduction.names
    pd.testing.assert_frame_equal(loaded.bundle.inputs.prepare(frame)[0], trained.bundle.inputs.prepare(frame)[0])
    np.testing.assert_array_equal(loaded.predict_pd("delicaite", frame), trained.predict_pd("delicaite", frame))


def test_cli_deep_components_zero_gives_the_raw_columns(cohort_with_deep_features, tmp_path):
    cohort_dir, features, _ = cohort_with_deep_features
    assert main(["cohort", "train", "--cohort", str(cohort_dir), "--out", str(tmp_path / "raw"), "--quick",
                 "--features", str(features), "--ensemble", "1", "--epochs", "20", "--deep-components", "0"]) == 0
    models = load_trained(tmp_path / "raw")
    assert models.bundle.inputs.reduction is None and models.summary["deep_reduction"] is None
    assert sum(c.startswith("deep_vit") for c in models.bundle.inputs.model_columns) == 300
