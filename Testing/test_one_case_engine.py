"""Every door gives a patient the same h: `cohort evaluate`, `delicaite case`, `delicaite batch` and the
Recommend Logic (in this process and in its background process) all run the one case engine and the
one model bundle.

The cohort is simulated (covariates, therapy, PD, three centres) and every patient has images: four
synthetic two-phase CTs made here (phantom.py, different seeds), shared out among the patients. Its
features are radiomics of both phases and the block-4 features of a small ViT encoder saved here, so the
bundle carries a feature spec with an encoder and a PCA of the deep columns. One patient has two
optional covariates (ALT, CRP) left blank: every door must fill them with the same training medians.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from DELICAITELib.bundle import load_bundle
from DELICAITELib.case import CaseResult
from DELICAITELib.cli import main
from DELICAITELib.cohort import read_cohort, write_cohort
from DELICAITELib.cohort.features import extract_cohort_features
from DELICAITELib.cohort.training import train_cohort
from DELICAITELib.evaluation.run import PREDICTIONS, run_cohort_evaluation
from DELICAITELib.features.deep.encoder import ViTEncoder, save_encoder
from DELICAITELib.features.deep.vit import DinoViT
from DELICAITELib.io import read_image, read_label
from DELICAITELib.phantom import make_phantom
from DELICAITELib.simulate import simulate_cohort

N_PATIENTS, N_IMAGES = 60, 4
BLANKED = ("alt", "crp")
TOLERANCE = 1e-9

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              # the comparators' MLP on 30-odd training patients: sklearn clips its batch size, as it should
              pytest.mark.filterwarnings("ignore:Got `batch_size` less than 1:UserWarning")]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The cohort with images, its features, a model from `cohort train` and the `cohort evaluate` report."""
    root = tmp_path_factory.mktemp("one-engine")
    folder = write_cohort(simulate_cohort(n=N_PATIENTS, seed=21), root / "cohort")
    images = folder / "images"
    images.mkdir()
    for k in range(N_IMAGES):
        phantom = make_phantom(seed=k + 1)
        for role, image in (("ap", phantom.ap), ("vp", phantom.vp), ("mask", phantom.label)):
            import SimpleITK as sitk

            sitk.WriteImage(image, str(images / f"case{k}_{role}.nii.gz"))
    manifest = pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)
    for role in ("ap", "vp", "mask"):
        manifest[role] = [f"images/case{i % N_IMAGES}_{role}.nii.gz" for i in range(len(manifest))]
    manifest.to_csv(folder / "manifest.csv", index=False)
    covariates = pd.read_csv(folder / "covariates.csv", dtype=str, keep_default_na=False)
    blanked = covariates["patient_id"].iloc[1]
    covariates.loc[1, list(BLANKED)] = ""
    covariates.to_csv(folder / "covariates.csv", index=False)

    torch.manual_seed(0)
    save_encoder(ViTEncoder(DinoViT(embed_dim=16, depth=4, num_heads=2, patch_size=16, img_size=64)), root / "encoder")
    run = extract_cohort_features(folder, root / "features", deep_encoder=root / "encoder")
    assert run.failed == 0 and len(run.features) == N_PATIENTS
    trained = train_cohort(folder, root / "model", root / "features" / "features.csv", quick=True, seed=0,
                           deep_components=4)
    run_cohort_evaluation(folder, root / "model", root / "report", features=root / "features" / "features.csv",
                          n_boot=20)
    predictions = pd.read_csv(root / "report" / PREDICTIONS, dtype={"patient_id": str}, float_precision="round_trip")
    cohort = read_cohort(folder)
    return {"root": root, "folder": folder, "manifest": manifest, "cohort": cohort, "trained": trained,
            "h": dict(zip(predictions["patient_id"], predictions["h"])), "blanked": blanked}


def patients(study) -> list[str]:
    """The blanked patient, a training patient and a test patient."""
    splits = study["trained"].splits
    training = splits.loc[splits["set"] == "training", "patient_id"]
    test = splits.loc[splits["set"] != "training", "patient_id"]
    chosen = [study["blanked"], next(p for p in training if p != study["blanked"]),
              next(p for p in test if p != study["blanked"])]
    return list(dict.fromkeys(chosen))


def clinical_of(study, patient_id: str) -> dict:
    """The patient's covariates.csv row as a clinical JSON object, blank cells left out."""
    row = study["cohort"].covariates.iloc[list(study["cohort"].patient_id).index(patient_id)]
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()
            if not (isinstance(v, float) and math.isnan(v))}


def images_of(study, patient_id: str) -> dict:
    row = study["manifest"].set_index("patient_id").loc[patient_id]
    return {role: study["folder"] / row[role] for role in ("ap", "vp", "mask")}


def test_the_model_sees_radiomics_and_deep_components_and_carries_its_encoder(study):
    bundle = load_bundle(study["root"] / "model")
    columns = bundle.inputs.model_columns
    assert any(c.startswith("AP_original_") for c in columns) and any(c.startswith("VP_original_") for c in columns)
    assert [c for c in columns if c.startswith("deep_")] == ["deep_pc01", "deep_pc02", "deep_pc03", "deep_pc04"]
    assert bundle.feature_spec.radiomics is not None
    encoder = bundle.feature_spec.deep_encoder
    assert encoder.startswith(str(study["root"] / "model")), "the encoder travels inside the model folder"
    assert bundle.inputs.imputation_rule == "training median"


def test_cohort_evaluate_and_delicaite_case_give_the_same_h(study, capsys):
    for patient_id in patients(study):
        clinical = study["root"] / f"{patient_id}.json"
        clinical.write_text(json.dumps(clinical_of(study, patient_id)))
        paths, out = images_of(study, patient_id), study["root"] / "case" / patient_id
        assert main(["case", "--ap", str(paths["ap"]), "--vp", str(paths["vp"]), "--mask", str(paths["mask"]),
                     "--clinical", str(clinical), "--model", str(study["root"] / "model"), "--out", str(out),
                     "--device", "cpu"]) == 0, capsys.readouterr().err
        result = CaseResult.read(out / "result.json")
        assert abs(result.prediction.score.h - study["h"][patient_id]) <= TOLERANCE, patient_id
        expected_imputed = ["log_alt", "log_crp"] if patient_id == study["blanked"] else []
        assert sorted(result.prediction.imputed) == expected_imputed


def test_cohort_evaluate_and_delicaite_batch_give_the_same_h(study, capsys):
    cases = study["root"] / "batch-cases"
    for patient_id in patients(study):
        folder = cases / patient_id
        folder.mkdir(parents=True)
        for role, path in images_of(study, patient_id).items():
            (folder / f"{role}.nii.gz").symlink_to(path)
        (folder / "clinical.json").write_text(json.dumps(clinical_of(study, patient_id)))
    out = study["root"] / "batch-out"
    assert main(["batch", str(cases), "--out", str(out), "--model", str(study["root"] / "model")]) == 0, \
        capsys.readouterr().err
    summary = pd.read_csv(out / "summary.csv", dtype={"case": str}, float_precision="round_trip")
    for patient_id, h in zip(summary["case"], summary["h"]):
        assert abs(h - study["h"][patient_id]) <= TOLERANCE, patient_id
        assert CaseResult.read(out / patient_id / "result.json").prediction.score.h == h


def test_cohort_evaluate_and_the_recommend_logic_give_the_same_h(study, app):
    from DELICAITELib import mrml
    from slicer_stubs import load_module, run_to_the_end

    logic = load_module("DELICAITERecommend").DELICAITERecommendLogic()
    for patient_id in patients(study):
        paths = images_of(study, patient_id)
        ap = read_image(paths["ap"])
        ap_node = mrml.volume_node_from_image(app.scene, ap, f"{patient_id} AP")
        vp_node = mrml.volume_node_from_image(app.scene, read_image(paths["vp"]), f"{patient_id} VP")
        segmentation = mrml.segmentation_node_from_label(app.scene, read_label(paths["mask"], reference=ap), ap_node)
        result, nodes = logic.compute(ap_node, vp_node, segmentation, clinical_of(study, patient_id),
                                      study["root"] / "model", study["root"] / "recommend" / patient_id)
        assert abs(result.prediction.score.h - study["h"][patient_id]) <= TOLERANCE, patient_id
        table = mrml.frame_from_table_node(nodes["result_table"]).set_index("quantity")
        assert table.loc["interaction score h", "number"] == result.prediction.score.h
    # the panel's own path, the background process, for the patient with blank covariates
    done = {}
    blanked = study["blanked"]
    paths = images_of(study, blanked)
    ap = read_image(paths["ap"])
    ap_node = mrml.volume_node_from_image(app.scene, ap, "AP")
    segmentation = mrml.segmentation_node_from_label(app.scene, read_label(paths["mask"], reference=ap), ap_node)
    logic.computeInBackground(ap_node, mrml.volume_node_from_image(app.scene, read_image(paths["vp"]), "VP"),
                              segmentation, clinical_of(study, blanked), study["root"] / "model",
                              onDone=lambda r, n, failure: done.update(result=r, failure=failure))
    run_to_the_end(logic.runner)
    assert done["failure"] is None
    assert abs(done["result"].prediction.score.h - study["h"][blanked]) <= TOLERANCE


def test_the_doors_agree_with_one_prediction_table(study):
    """cohort evaluate's h is the bundle's own prediction for the design frame (one pass, no second route)."""
    from DELICAITELib.cohort import design_frame

    bundle = load_bundle(study["root"] / "model")
    frame = design_frame(study["cohort"], study["root"] / "features" / "features.csv")
    h = bundle.predictions(frame)["h"].to_numpy()
    np.testing.assert_array_equal(h, [study["h"][p] for p in frame["patient_id"]])
