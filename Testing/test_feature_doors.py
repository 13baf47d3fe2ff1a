"""The Slicer hub and the command line give a real case the same features, with either radiomics engine.

Both doors run the case engine, but reach it differently: the hub's Logic (DELICAITE.py, computeFeatures)
takes MRML nodes, converted by DELICAITELib.mrml (RAS <-> LPS, segments exported onto the AP grid), while
`delicaite cohort features` reads image files in another process. A slip in either conversion (a flipped
axis, a shifted origin, a lost or rounded voxel, the engine not passed on) changes feature values, so the
two must agree to the last digit: on 3D-IRCADb-01 patient 17 with its expert masks (one phase) and on
HCC_009 (arterial and portal-venous phases; no mask, so the ellipse drawn inside its mass by
Testing/benchmarks/radiomics_agreement.py), each cut to its tumour's slices to keep the file quick.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from conftest import SHARED_DATA, shared_path

slicer = pytest.importorskip("slicer", reason="the hub's Logic needs the slicer-core wheel (pip install '.[test]')")

from DELICAITELib import mrml  # noqa: E402
from DELICAITELib.features.engines import agreement_record, family  # noqa: E402
from DELICAITELib.features.spec import FeatureSpec  # noqa: E402

from slicer_stubs import load_module  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
import radiomics_agreement  # noqa: E402

ENGINES = ("pyradiomics", "mirp")
CASES = ("IRCADb-17", "HCC_009")


# ---- the cases, cut to their tumours, and their files -------------------------------------------------------------

@pytest.fixture(scope="session")
def cases():
    """{case: (AP, VP or None for one phase, label map)} on the AP grid, cut to the tumour's slices."""
    for folder in (("ircadb-17",), ("lits-117",), ("hcc-tace-seg", "HCC_009")):
        shared_path(*folder)  # the benchmark's loader reads all three
    tumours = {name: (images, label) for name, images, label in radiomics_agreement.tumours(SHARED_DATA)}
    (ircadb,), ircadb_label = tumours["IRCADb-17"][0].values(), tumours["IRCADb-17"][1]
    hcc_label = tumours["HCC_009 AP"][1]  # one ellipse for both phases, which share a grid
    found = {"IRCADb-17": (ircadb, None, ircadb_label),
             "HCC_009": (tumours["HCC_009 AP"][0]["AP"], tumours["HCC_009 VP"][0]["VP"], hcc_label)}
    return {name: _cropped(*images) for name, images in found.items()}


def _cropped(ap, vp, label):
    """Every image cut to the tumour's slices (so the same three are the largest). The whole field of view
    stays: a case must show air near -1000 HU to pass as CT, and the texture is taken on three slices anyway."""
    z = np.flatnonzero(np.any(sitk.GetArrayViewFromImage(label) == 2, axis=(1, 2)))
    cut = lambda image: None if image is None else image[:, :, int(z[0]):int(z[-1]) + 1]  # noqa: E731
    return cut(ap), cut(vp), cut(label)


@pytest.fixture(scope="session")
def cohort(cases, tmp_path_factory):
    """A cohort folder holding both cases as NRRD (a double-precision header: NIfTI's is float32) and the
    manifest; one phase is given as the same file for ap and vp, the command line's single-phase form."""
    folder = tmp_path_factory.mktemp("doors") / "cohort"
    folder.mkdir()
    rows = []
    for name, (ap, vp, label) in cases.items():
        paths = {role: folder / f"{name}_{role}.nrrd" for role in ("ap", "vp", "mask")}
        for role, image in (("ap", ap), ("vp", vp), ("mask", label)):
            if image is not None:
                sitk.WriteImage(image, str(paths[role]))
        vp_path = paths["vp"] if vp is not None else paths["ap"]
        rows.append({"patient_id": name, "centre": "real", "ap": paths["ap"], "vp": vp_path, "mask": paths["mask"],
                     "therapy": "TACE", "pd": "", "os_months": "", "os_event": ""})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


@pytest.fixture(scope="session")
def command_line(cohort, tmp_path_factory):
    """engine -> {"cases": {case: its case file}, "spec": feature_spec.json}, from one `delicaite cohort
    features` process per engine (run when first asked for)."""
    runs = {}

    def features(engine):
        if engine not in runs:
            out = tmp_path_factory.mktemp(f"cli_{engine}")
            command = [sys.executable, "-m", "DELICAITELib.cli", "cohort", "features", "--cohort", str(cohort),
                       "--out", str(out), "--radiomics-engine", engine, "--no-progress"]
            finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
            assert finished.returncode == 0, finished.stderr
            runs[engine] = {"cases": {name: json.loads((out / "cases" / f"{name}.json").read_text()) for name in CASES},
                            "spec": json.loads((out / "feature_spec.json").read_text())}
        return runs[engine]

    return features


def hub_features(app, case, engine) -> pd.DataFrame:
    """The hub's features of a case: nodes in a real scene, the module's Logic, the table read back."""
    ap, vp, label = case
    ap_node = mrml.volume_node_from_image(app.scene, ap, "AP")
    vp_node = None if vp is None else mrml.volume_node_from_image(app.scene, vp, "VP")
    segmentation = mrml.segmentation_node_from_label(app.scene, label, ap_node, "Segmentation")
    module = load_module("DELICAITE")
    table = module.DELICAITELogic().computeFeatures(ap_node, vp_node, segmentation, radiomicsEngine=engine)
    return mrml.frame_from_table_node(table), table.GetAttribute(module.RADIOMICS_ENGINE_ATTRIBUTE)


# ---- the tests ---------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", CASES)
def test_hub_and_command_line_give_the_same_features(app, cases, command_line, name, engine):
    run = command_line(engine)
    record = run["cases"][name]
    hub, hub_engine = hub_features(app, cases[name], engine)

    # Both doors record the engine they were asked for (the hub on its table node), the same version.
    assert family(record["radiomics_engine"]) == engine and family(run["spec"]["radiomics_engine"]) == engine
    assert hub_engine == record["radiomics_engine"]
    assert record["mask_source"] == "given"
    assert list(hub.columns) == ["feature", "value"]
    assert list(hub["feature"]) == list(record["features"])  # same names, same order
    # Exact: both doors hand the engine the same float32 voxels on the same double-precision grid.
    np.testing.assert_array_equal(hub["value"].to_numpy(), np.array(list(record["features"].values()), dtype=float))
    assert hub["feature"].str.startswith(("AP_", "VP_")).all() and np.isfinite(hub["value"]).all()
    if cases[name][1] is None:  # one phase: VP is the AP again, through both doors
        values = dict(zip(hub["feature"], hub["value"]))
        assert all(values[f"VP_{k[3:]}"] == v for k, v in values.items() if k.startswith("AP_"))


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_the_engines_differ_where_the_agreement_record_allows(command_line, name):
    """The two engines' values are not the same numbers (else the test above could not tell whether the
    engine was passed on), and the features the record says agree do agree within its tolerance."""
    values = {engine: command_line(engine)["cases"][name]["features"] for engine in ENGINES}
    common = sorted(set(values["pyradiomics"]) & set(values["mirp"]))
    assert common and set(values["pyradiomics"]) != set(values["mirp"])  # mirp computes no shape2D
    pairs = np.array([[values[e][f] for e in ENGINES] for f in common])
    assert np.any(pairs[:, 0] != pairs[:, 1])
    record = agreement_record()
    if record["settings_sha256"] != FeatureSpec.from_options().radiomics_sha256():
        pytest.skip("the agreement record was measured with other radiomics settings")
    relative = np.abs(pairs[:, 1] - pairs[:, 0]) / np.maximum(np.abs(pairs).max(axis=1), 1e-12)
    agrees = np.array([record["features"][f.split("_", 1)[1]]["agrees"] for f in common])
    off = {f: round(float(r), 4) for f, r, a in zip(common, relative, agrees) if a and r > record["tolerance"]}
    assert not off, f"features the record says agree differ by more than {record['tolerance']:.0%}: {off}"
