"""Cohort manifest checks: every problem named by CSV line (header = line 1) and column, all at once."""

import re
import shutil

import numpy as np
import pandas as pd
import pytest

from DELICAITELib.cli import main
from DELICAITELib.cohort import read_cohort
from DELICAITELib.errors import DelicaiteError
from DELICAITELib.cohort.manifest import ManifestError, read_manifest, validate_manifest

N = 12


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A cohort folder written by `delicaite simulate` (covariates only)."""
    out = tmp_path_factory.mktemp("sim") / "cohort"
    assert main(["simulate", "--n", str(N), "--seed", "3", "--out", str(out)]) == 0
    return out


@pytest.fixture
def cohort(simulated, tmp_path):
    """A private copy to spoil, with two image files beside the manifest."""
    folder = tmp_path / "cohort"
    shutil.copytree(simulated, folder)
    (folder / "img").mkdir()
    for name in ("ap.nii.gz", "vp.nii.gz"):
        (folder / "img" / name).write_bytes(b"")  # only existence is checked here
    return folder


def manifest(folder) -> pd.DataFrame:
    return pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)


def rewrite(folder, df: pd.DataFrame) -> None:
    df.to_csv(folder / "manifest.csv", index=False)


def problems_of(folder) -> list[str]:
    with pytest.raises(ManifestError) as info:
        read_cohort(folder)
    return info.value.problems


def test_simulated_cohort_reads_fine(simulated):
    cohort = read_cohort(simulated)
    assert len(cohort) == N and cohort.images is None and cohort.info["manifest_notes"] == []
    assert set(cohort.therapy) <= {"TACE", "HAIC"}
    assert cohort.pd.dtype.kind == "i" and cohort.os_event.dtype.kind == "i"
    checked = read_manifest(simulated)
    assert list(checked["patient_id"]) == list(cohort.patient_id)
    assert checked[["ap", "vp", "mask"]].isna().all(axis=None)


def test_missing_image_file_names_line_column_and_path(cohort):
    df = manifest(cohort)
    df.loc[2, ["ap", "vp"]] = ["img/ap.nii.gz", "img/missing_vp.nii.gz"]
    rewrite(cohort, df)
    (problem,) = problems_of(cohort)
    assert problem.startswith("line 4, column vp: img/missing_vp.nii.gz not found")
    assert "relative paths start in the manifest's folder" in problem


def test_image_paths_relative_to_manifest_folder_or_absolute(cohort, monkeypatch, tmp_path):
    df = manifest(cohort)
    df.loc[0, ["ap", "vp"]] = ["img/ap.nii.gz", str(cohort / "img" / "vp.nii.gz")]
    rewrite(cohort, df)
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the working folder
    back = read_cohort(cohort)
    assert back.images.loc[0, "ap"] == str(cohort / "img" / "ap.nii.gz")
    assert back.images.loc[0, "vp"] == str(cohort / "img" / "vp.nii.gz")
    assert back.images.loc[0, "mask"] is None and back.images.loc[1, "ap"] is None


def test_unknown_therapy_code_lists_allowed_values_and_case_is_normalised(cohort):
    df = manifest(cohort)
    df.loc[0, "therapy"] = "haic"
    df.loc[1, "therapy"] = " Tace "
    df.loc[5, "therapy"] = "RFA"
    rewrite(cohort, df)
    (problem,) = problems_of(cohort)
    assert problem == "line 7, column therapy: 'RFA' is not a therapy code; write TACE or HAIC"
    df.loc[5, "therapy"] = "TACE"
    rewrite(cohort, df)
    back = read_cohort(cohort)
    assert list(back.therapy[:2]) == ["HAIC", "TACE"]


def test_duplicate_and_empty_patient_ids_name_both_lines(cohort):
    df = manifest(cohort)
    df.loc[6, "patient_id"] = df.loc[1, "patient_id"]
    df.loc[8, "patient_id"] = ""
    rewrite(cohort, df)
    problems = problems_of(cohort)
    assert f"line 8, column patient_id: id {df.loc[1, 'patient_id']!r} is also on line 3" in problems[0]
    assert problems[1].startswith("line 10, column patient_id: empty")
    # covariates.csv still holds the original ids: the ones no longer in the manifest are named too
    assert any(p.startswith("covariates.csv line 8, column patient_id") and "not in manifest.csv" in p
               for p in problems)


def test_negative_and_non_numeric_survival(cohort):
    df = manifest(cohort)
    df.loc[3, "os_months"] = "-2.5"
    df.loc[4, "os_months"] = "ten"
    df.loc[5, "os_event"] = "yes"
    df.loc[6, "os_months"] = ""  # os_event still given
    rewrite(cohort, df)
    problems = problems_of(cohort)
    assert [p.split(":")[0] for p in problems] == ["line 5, column os_months", "line 6, column os_months",
                                                  "line 7, column os_event", "line 8, column os_months"]
    assert "is negative" in problems[0] and "not a number" in problems[1] and "not 0/1" in problems[2]


def test_missing_column_is_named(cohort):
    df = manifest(cohort).drop(columns=["os_event", "therapy"])
    rewrite(cohort, df)
    (problem,) = problems_of(cohort)
    assert problem.startswith("line 1 (header): column(s) therapy, os_event missing")


def test_unknown_pd_is_allowed_and_reported_but_bad_pd_is_not(cohort):
    df = manifest(cohort)
    df.loc[[2, 9], "pd"] = ""
    rewrite(cohort, df)
    with pytest.warns(UserWarning, match=r"2 patient\(s\) with an empty pd .* line\(s\) 4, 11"):
        back = read_cohort(cohort)
    assert np.isnan(back.pd[[2, 9]]).all() and np.nansum(back.pd) == pd.to_numeric(df["pd"]).sum()
    assert "training leaves them out" in back.info["manifest_notes"][0]
    df.loc[3, "pd"] = "2"
    rewrite(cohort, df)
    (problem,) = problems_of(cohort)
    assert problem.startswith("line 5, column pd: '2' is not 0/1")


def test_covariate_ids_and_values_checked_with_their_lines(cohort):
    cov = pd.read_csv(cohort / "covariates.csv", dtype=str, keep_default_na=False)
    cov.loc[4, "patient_id"] = "STRANGER"
    cov.loc[7, "alb"] = "-5"
    cov.to_csv(cohort / "covariates.csv", index=False)
    problems = problems_of(cohort)
    manifest_id = manifest(cohort).loc[4, "patient_id"]
    assert "covariates.csv line 6, column patient_id: id 'STRANGER' is not in manifest.csv" in problems[0]
    assert problems[1].startswith(f"line 6, column patient_id: id {manifest_id!r} has no row in covariates.csv")
    assert re.match(r"covariates\.csv line 9 \(patient \w+\), column alb: .*-5", problems[2])


def test_all_problems_collected_in_one_error_with_a_count(cohort):
    df = manifest(cohort)
    df["therapy"] = "surgery"
    rewrite(cohort, df)
    with pytest.raises(DelicaiteError) as info:
        read_cohort(cohort)
    message = str(info.value)
    assert message.startswith(f"cohort {cohort} has {N} problems: line 2, column therapy")
    assert message.endswith(f"(+{N - 10} more)") and message.count("is not a therapy code") == 10


def test_image_rules(cohort):
    df = manifest(cohort)
    df.loc[0, ["vp"]] = ["img/vp.nii.gz"]  # vp without ap
    df.loc[1, ["mask"]] = ["img/ap.nii.gz"]  # a mask without images
    df.loc[2, "patient_id"] = "../escape"  # ids name the case files
    with pytest.raises(ManifestError) as info:
        validate_manifest(df, cohort)
    heads = [p.split(":")[0] for p in info.value.problems]
    assert heads == ["line 2, column ap", "line 3, column mask", "line 4, column patient_id"]
    # require_images: a covariates-only row is a problem; check_image_paths=False skips existence
    ok = manifest(cohort)
    ok.loc[:, ["ap", "vp"]] = ["img/ap.nii.gz", "img/absent.nii.gz"]
    assert validate_manifest(ok, cohort, require_images=True, check_image_paths=False)["vp"].notna().all()
    ok.loc[3, ["ap", "vp"]] = ["", ""]
    with pytest.raises(ManifestError, match="line 5, column ap: empty but this cohort needs images"):
        validate_manifest(ok, cohort, require_images=True, check_image_paths=False)


def test_cli_train_on_a_bad_manifest_exits_2_with_the_line(cohort, tmp_path, capsys):
    df = manifest(cohort)
    df.loc[0, "os_months"] = "-1"
    rewrite(cohort, df)
    assert main(["train", "--cohort", str(cohort), "--out", str(tmp_path / "model"), "--ensemble", "1"]) == 2
    assert "line 2, column os_months: -1 is negative" in capsys.readouterr().err


def test_unreadable_or_empty_manifest(cohort):
    (cohort / "manifest.csv").write_text("")
    with pytest.raises(DelicaiteError, match="is empty: write a header line"):
        read_cohort(cohort)
    (cohort / "manifest.csv").unlink()
    with pytest.raises(DelicaiteError, match="cohort file missing"):
        read_cohort(cohort)


def test_a_semicolon_separated_manifest_is_named_as_such(cohort):
    """A spreadsheet saved with ';' (the European CSV default): the one-line error says so."""
    frame = pd.read_csv(cohort / "manifest.csv", dtype=str, keep_default_na=False)
    frame.to_csv(cohort / "manifest.csv", sep=";", index=False)
    with pytest.raises(DelicaiteError) as error:
        read_manifest(cohort)
    assert "separated by semicolons, not commas" in str(error.value) and "\n" not in str(error.value)
