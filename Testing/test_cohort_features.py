"""`delicaite cohort features` on a small cohort made from real CT: values, failures, resume, parallel, Dask.

The cohort (built once): three cases from 3D-IRCADb-01 patient 17 shrunk by different factors (AP; VP =
the AP smoothed, so the phases differ; the reference label map), the synthetic phantom without a mask
(auto-segmented, and refused by the plausibility gate: it has no lungs), one case whose AP file is not an image, one covariates-only patient and two more
patients given the images of the first. The resume, Dask and settings tests use the same cohort without
the phantom ("fast": auto-segmentation costs seconds per process); its features come from the same files.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from DELICAITELib.cli import main
from DELICAITELib.storage.folders import LOCK_NAME
from DELICAITELib.cohort import write_cohort
from DELICAITELib.cohort import read_features_table as read_features
from DELICAITELib.cohort.features import extract_cohort_features, read_case_file
from DELICAITELib.cohort.features.crops import read_cohort_crops
from DELICAITELib.errors import DelicaiteError
from DELICAITELib.features import extract_radiomics, load_radiomics_settings
from DELICAITELib.io import load_case
from DELICAITELib.phantom import make_phantom
from DELICAITELib.simulate import simulate_cohort
from DELICAITELib.slices import largest_tumour_slices

SHRINK = {0: [4, 4, 2], 1: [3, 3, 2], 2: [4, 4, 3]}  # manifest row → shrink factors of IRCADb-17
PHANTOM_ROW, BROKEN_ROW, COVARIATES_ONLY_ROW = 3, 4, 5
COPY_ROWS = [6, 7]  # the images of row 0 under other ids
GOOD_ROWS = [0, 1, 2, *COPY_ROWS]
FAST_GOOD_ROWS = GOOD_ROWS


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory, ircadb17_image, ircadb17_label):
    folder = tmp_path_factory.mktemp("features") / "cohort"
    write_cohort(simulate_cohort(n=8, seed=5), folder)
    images = folder / "images"
    images.mkdir()
    manifest = pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)
    for row, factors in SHRINK.items():
        ap = sitk.Shrink(ircadb17_image, factors)
        phases = {"ap": ap, "vp": sitk.SmoothingRecursiveGaussian(ap, 1.5),
                  "mask": sitk.Shrink(ircadb17_label, factors)}
        for role, image in phases.items():
            sitk.WriteImage(image, str(images / f"r{row}_{role}.nii.gz"))
        # row 2 gives absolute paths, the others paths relative to the cohort folder
        base = f"{images}/" if row == 2 else "images/"
        manifest.loc[row, ["ap", "vp", "mask"]] = [f"{base}r{row}_{role}.nii.gz" for role in phases]
    phantom = make_phantom()
    sitk.WriteImage(phantom.ap, str(images / "phantom_ap.nii.gz"))
    sitk.WriteImage(phantom.vp, str(images / "phantom_vp.nii.gz"))
    manifest.loc[PHANTOM_ROW, ["ap", "vp"]] = ["images/phantom_ap.nii.gz", "images/phantom_vp.nii.gz"]
    (images / "broken_ap.nii.gz").write_bytes(b"this is not a NIfTI file")
    manifest.loc[BROKEN_ROW, ["ap", "vp"]] = ["images/broken_ap.nii.gz", "images/r0_vp.nii.gz"]
    manifest.loc[COPY_ROWS, ["ap", "vp", "mask"]] = manifest.loc[0, ["ap", "vp", "mask"]].tolist()
    manifest.to_csv(folder / "manifest.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def fast_dir(cohort_dir):
    """The cohort without the phantom row, its image paths made absolute."""
    folder = cohort_dir.parent / "fast"
    folder.mkdir()
    manifest = pd.read_csv(cohort_dir / "manifest.csv", dtype=str, keep_default_na=False).drop(index=PHANTOM_ROW)
    for column in ("ap", "vp", "mask"):
        manifest[column] = [str(cohort_dir / v) if v else "" for v in manifest[column]]
    manifest.to_csv(folder / "manifest.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def ids(cohort_dir):
    return pd.read_csv(cohort_dir / "manifest.csv", dtype=str)["patient_id"].tolist()


@pytest.fixture(scope="module")
def serial(cohort_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    run = extract_cohort_features(cohort_dir, out)
    return out, run


def case_files(out: Path) -> dict[str, tuple[int, int]]:
    """Finished case files → (inode, mtime in ns): a rewritten file changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "cases").glob("*.json")}


def serial_table(serial) -> pd.DataFrame:
    return read_features(serial[0] / "features.csv")


def assert_same_table(out: Path, reference: pd.DataFrame) -> None:
    table = read_features(out / "features.csv")
    assert list(table.columns) == list(reference.columns)
    assert list(table["patient_id"]) == list(reference["patient_id"])
    np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(float), reference.iloc[:, 1:].to_numpy(float),
                               rtol=1e-9, atol=1e-12)


def test_serial_table_equals_direct_extraction(serial, cohort_dir, ids):
    out, run = serial
    table = read_features(out / "features.csv")
    assert list(table["patient_id"]) == [ids[r] for r in GOOD_ROWS]  # manifest order, good cases only
    names = list(table.columns[1:])
    ap, vp = [n for n in names if n.startswith("AP_")], [n for n in names if n.startswith("VP_")]
    assert len(ap) == len(vp) > 100 and len(ap) + len(vp) == len(names)
    assert [n[3:] for n in ap] == [n[3:] for n in vp]
    assert (run.done, run.resumed, run.failed) == (len(GOOD_ROWS), 0, 2)
    manifest = pd.read_csv(cohort_dir / "manifest.csv", dtype=str, keep_default_na=False)
    settings_version = load_radiomics_settings()[1]
    for row in GOOD_ROWS:
        paths = [cohort_dir / manifest.loc[row, c] if manifest.loc[row, c] else None for c in ("ap", "vp", "mask")]
        record = read_case_file(out / "cases" / f"{ids[row]}.json")
        case = load_case(*paths)
        assert record["mask_source"] == "given"
        slices = largest_tumour_slices(case.label)
        assert record["slices"] == [{"index": s.index, "area_mm2": s.area_mm2} for s in slices]
        assert record["radiomics_settings_version"] == settings_version and record["delicaite_version"]
        direct = extract_radiomics({"AP": case.ap, "VP": case.vp}, case.label, [s.index for s in slices])
        assert list(direct) == names
        np.testing.assert_allclose(table.loc[table["patient_id"] == ids[row], names].to_numpy(float)[0],
                                   np.array(list(direct.values()), float), rtol=1e-12, err_msg=f"row {row}")
    # differently shrunk images give different rows; the same images under other ids the same row
    rows = table.set_index("patient_id")
    assert not np.allclose(rows.loc[ids[0]], rows.loc[ids[1]])
    for row in COPY_ROWS:
        np.testing.assert_array_equal(rows.loc[ids[row]], rows.loc[ids[0]])


def test_phantom_without_mask_is_refused_not_guessed(serial, ids):
    """The phantom's automatic liver cannot be checked against any lung (it has none): the gate refuses it,
    the failure says what to do, and no features are made from it."""
    out, _ = serial
    failures = pd.read_csv(out / "failures.csv", dtype=str).set_index("patient_id")
    error = failures.loc[ids[PHANTOM_ROW], "error"]
    assert "automatic liver mask is implausible" in error and "no lung base in the field of view" in error
    assert "draw the liver and tumour" in error
    assert not (out / "cases" / f"{ids[PHANTOM_ROW]}.json").exists()
    assert ids[PHANTOM_ROW] not in set(read_features(out / "features.csv")["patient_id"])


def test_broken_case_recorded_and_others_finish(serial, ids):
    out, run = serial
    failures = pd.read_csv(out / "failures.csv", dtype=str)
    assert list(failures["patient_id"]) == [ids[PHANTOM_ROW], ids[BROKEN_ROW]]
    assert failures["error"][1].startswith("cannot read images/broken_ap.nii.gz")
    assert str(out.parent) not in " ".join(failures["error"])  # no absolute paths in a file that travels
    assert sorted(case_files(out)) == sorted(f"{ids[r]}.json" for r in GOOD_ROWS)
    assert not list((out / "cases").glob(".*"))  # no temporary files
    assert ids[COVARIATES_ONLY_ROW] not in set(failures["patient_id"])


def test_resume_after_sigkill_writes_each_case_once(serial, fast_dir, ids, tmp_path):
    out = tmp_path / "features"
    command = [sys.executable, "-m", "DELICAITELib.cli", "cohort", "features", "--cohort", str(fast_dir),
               "--out", str(out), "--workers", "2", "--no-progress"]
    # a session of its own, so the kill takes the workers down with the main process, as a crash would
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while not list((out / "cases").glob("*.json")) and first.poll() is None:
            time.sleep(0.02)
    finally:
        try:
            os.killpg(first.pid, signal.SIGKILL)
        except ProcessLookupError:  # it had already ended
            pass
        first.wait()
    before = case_files(out)
    assert 1 <= len(before) < len(FAST_GOOD_ROWS), "the run was killed before it finished"
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2, second.stderr  # the broken case fails again
    assert f"{len(before)} already done, {len(FAST_GOOD_ROWS) + 1 - len(before)} to extract" in second.stderr
    after = case_files(out)
    assert {name: after[name] for name in before} == before  # finished files were not rewritten
    assert sorted(after) == sorted(f"{ids[r]}.json" for r in FAST_GOOD_ROWS)
    # no temporary files left (the folder's lock file stays: it is what keeps a second run out)
    assert not list((out / "cases").glob(".*")) and [p.name for p in out.glob(".*")] == [LOCK_NAME]
    table = read_features(out / "features.csv")
    assert sorted(table["patient_id"]) == sorted(ids[r] for r in FAST_GOOD_ROWS)  # each case exactly once
    assert_same_table(out, serial_table(serial))


def test_two_workers_give_the_serial_table(serial, cohort_dir, tmp_path):
    run = extract_cohort_features(cohort_dir, tmp_path, workers=2)
    assert (run.done, run.failed) == (len(GOOD_ROWS), 2)
    assert_same_table(tmp_path, serial_table(serial))


def test_dask_cluster_gives_the_serial_table(serial, fast_dir, tmp_path, capsys):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                                            "(pip install 'delicaite[cluster]')")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        code = main(["cohort", "features", "--cohort", str(fast_dir), "--out", str(tmp_path),
                     "--scheduler", cluster.scheduler_address, "--no-progress"])
    assert code == 2 and "1 case(s) failed" in capsys.readouterr().err
    assert_same_table(tmp_path, serial_table(serial))


def test_changed_settings_or_half_files_are_redone(serial, fast_dir, ids, tmp_path):
    out = tmp_path / "features"
    (out / "cases").mkdir(parents=True)
    for name in case_files(serial[0]):
        if name != f"{ids[PHANTOM_ROW]}.json":
            (out / "cases" / name).write_bytes((serial[0] / "cases" / name).read_bytes())
    stale = out / "cases" / f"{ids[0]}.json"
    record = json.loads(stale.read_text())
    record["radiomics_settings_sha256"] = "made with other settings"
    record["features"] = {name: 0.0 for name in record["features"]}
    stale.write_text(json.dumps(record))
    (out / "cases" / f"{ids[1]}.json").write_text('{"format": "delicaite-case-features", "feat')  # half a file
    run = extract_cohort_features(fast_dir, out)
    assert (run.done, run.resumed, run.failed) == (2, len(FAST_GOOD_ROWS) - 2, 1)
    assert_same_table(out, serial_table(serial))


def test_covariates_only_cohort_says_nothing_to_extract(tmp_path, capsys):
    write_cohort(simulate_cohort(n=5, seed=1), tmp_path / "cohort")
    with pytest.raises(DelicaiteError, match="covariates only: nothing to extract"):
        extract_cohort_features(tmp_path / "cohort", tmp_path / "out")
    assert main(["cohort", "features", "--cohort", str(tmp_path / "cohort"), "--out", str(tmp_path / "out")]) == 2
    assert "covariates only: nothing to extract" in capsys.readouterr().err


def test_deep_encoder_adds_vit_columns_and_a_new_encoder_redoes_the_cases(serial, fast_dir, ids, tmp_path):
    from DELICAITELib.features.deep.encoder import ViTEncoder, feature_columns, save_encoder
    from DELICAITELib.features.deep.vit import DinoViT
    from DELICAITELib.preprocessing import preprocess_case

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    small = dict(embed_dim=48, depth=4, num_heads=3, patch_size=14, img_size=224)  # a test-sized ViT
    save_encoder(ViTEncoder(DinoViT(**small)), tmp_path / "encoder")
    cnn_dir = _untrained_cnn_folder(tmp_path / "cnn")
    out = tmp_path / "features"
    run = extract_cohort_features(fast_dir, out, deep_encoder=tmp_path / "encoder", save_crops=True, deep_cnn=cnn_dir)
    assert (run.done, run.resumed, run.failed) == (len(FAST_GOOD_ROWS), 0, 1)
    table = read_features(out / "features.csv")
    deep = [c for c in table.columns if c.startswith("deep_vit")]
    assert deep == feature_columns(48) and len(deep) == 2 * 2 * 48
    cnn_columns = [c for c in table.columns if c.startswith("deep_cnn")]
    assert len(cnn_columns) == 2 * (1 + 512) + 1 and "deep_cnn_stacked_prob" in cnn_columns
    # radiomics as without the encoder; the deep columns as the encoder gives them for that case directly
    radiomics = serial_table(serial)
    np.testing.assert_allclose(table[radiomics.columns[1:]].to_numpy(float), radiomics.iloc[:, 1:].to_numpy(float),
                               rtol=1e-9, atol=1e-12)
    manifest = pd.read_csv(fast_dir / "manifest.csv", dtype=str, keep_default_na=False)
    row = manifest.iloc[0]
    case = load_case(row["ap"], row["vp"], row["mask"])
    from DELICAITELib.features.deep.encoder import load_encoder

    crops = preprocess_case(case, largest_tumour_slices(case.label))
    direct = load_encoder(tmp_path / "encoder").case_features(crops)
    first = table.set_index("patient_id").loc[row["patient_id"], deep].to_numpy(float)
    np.testing.assert_allclose(first, [direct[c] for c in deep], rtol=1e-5, atol=1e-6)
    from DELICAITELib.features.deep.cnn import case_cnn_features, load_phase_cnns

    direct_cnn = case_cnn_features(crops, *load_phase_cnns(cnn_dir))  # crops resized to the CNNs' 64 px
    first_cnn = table.set_index("patient_id").loc[row["patient_id"], cnn_columns].to_numpy(float)
    np.testing.assert_allclose(first_cnn, [direct_cnn[c] for c in cnn_columns], rtol=1e-5, atol=1e-6)
    # --save-crops kept exactly those crops, for every good case
    saved = read_cohort_crops(out)
    assert sorted(saved) == sorted(ids[r] for r in FAST_GOOD_ROWS)
    for phase in ("AP", "VP"):
        np.testing.assert_array_equal(saved[row["patient_id"]][phase], crops[phase])
    # the same encoder again (crops or not): every case resumed; another encoder: every case done again
    assert extract_cohort_features(fast_dir, out, deep_encoder=tmp_path / "encoder",
                                   deep_cnn=cnn_dir).resumed == len(FAST_GOOD_ROWS)
    torch.manual_seed(1)
    save_encoder(ViTEncoder(DinoViT(**small)), tmp_path / "other")
    assert extract_cohort_features(fast_dir, out, deep_encoder=tmp_path / "other",
                                   deep_cnn=cnn_dir).done == len(FAST_GOOD_ROWS)
    with pytest.raises(DelicaiteError, match="deep encoder not found"):
        extract_cohort_features(fast_dir, out, deep_encoder=tmp_path / "nowhere")


def _untrained_cnn_folder(folder):
    """A CNN folder as `delicaite deep train-cnn` writes it, with untrained 64 px networks and a stacking
    fitted on made-up probabilities: enough to check what cohort features does with it."""
    import torch

    from DELICAITELib.features.deep.cnn import CNN_FOLDERS, STACKING_FOLDER, PhaseCNN, build_resnet18, save_phase_cnn
    from DELICAITELib.features.deep.stacking import PhaseStacking, save_stacking

    torch.manual_seed(0)
    for phase, name in CNN_FOLDERS.items():
        save_phase_cnn(PhaseCNN(build_resnet18().eval(), (64, 64), phase), folder / name)
    rng = np.random.default_rng(0)
    p_ap, p_vp = rng.uniform(0.05, 0.95, 40), rng.uniform(0.05, 0.95, 40)
    save_stacking(PhaseStacking().fit(p_ap, p_vp, rng.random(40) < p_ap), folder / STACKING_FOLDER)
    return folder
