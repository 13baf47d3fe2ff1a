"""Which segmenter runs: "auto" prefers TotalSegmentator when it is installed, falls back to the embedded
network when it fails, and never keeps its unmeasured tumour unless asked. TotalSegmentator itself is a
stand-in command (test_segmentation_tools.FAKE_TOTALSEGMENTATOR): its weights cannot be fetched here."""

import json
import os
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from DELICAITELib.errors import DelicaiteError
from DELICAITELib.io import read_image
from DELICAITELib.segmentation.backends import (
    TOTALSEG_TUMOUR_WITHHELD,
    automatic_mask,
    choose_backend,
    describe_backend,
)
from DELICAITELib.segmentation.plausibility import review_path
from DELICAITELib.segmentation.totalsegmentator import NOT_INSTALLED, is_installed
from test_segmentation_tools import arr, install_fake_totalsegmentator, small_ct_file


@pytest.fixture
def fake_totalsegmentator(tmp_path, monkeypatch):
    """A TotalSegmentator command on PATH; returns the file its arguments land in."""
    return install_fake_totalsegmentator(tmp_path, monkeypatch)


@pytest.fixture
def no_totalsegmentator(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))  # python, but no TotalSegmentator command...
    monkeypatch.setitem(sys.modules, "totalsegmentator", None)  # ...and no importable package


def test_auto_prefers_totalsegmentator_when_installed(fake_totalsegmentator, tmp_path):
    ct_path, liver = small_ct_file(tmp_path)
    assert is_installed() and choose_backend("auto") == "totalsegmentator"
    assert choose_backend("delicaite") == "delicaite"
    backend, line = describe_backend("auto")
    assert backend == "totalsegmentator" and "TotalSegmentator (preferred" in line

    with pytest.warns(UserWarning, match="automatic tumour withheld: TotalSegmentator") as caught:
        result = automatic_mask(read_image(ct_path), ct_path=ct_path, device="cpu")
    assert TOTALSEG_TUMOUR_WITHHELD in [str(w.message) for w in caught]
    args = json.loads(fake_totalsegmentator.read_text())
    assert "--task" not in args and args[args.index("--roi_subset") + 1] == "liver"  # one run, liver only
    assert result.backend == "totalsegmentator" and result.review.figures["backend"] == "totalsegmentator"
    assert np.array_equal(arr(result.label), liver.astype(np.uint8))  # bone (its label 6) is not liver


def test_totalsegmentator_tumour_only_when_asked_and_only_inside_the_liver(fake_totalsegmentator, tmp_path):
    ct_path, liver = small_ct_file(tmp_path)
    result = automatic_mask(read_image(ct_path), ct_path=ct_path, device="cpu", tumour="always")
    args = json.loads(fake_totalsegmentator.read_text())  # the last run: the liver-tumour task, full resolution
    assert args[args.index("--task") + 1] == "liver_vessels" and "--fast" not in args
    expected = liver.astype(np.uint8)
    expected[:, :, :7][liver[:, :, :7]] = 2  # its tumour in the liver; its "tumour" in the bone is dropped
    assert np.array_equal(arr(result.label), expected)


def test_auto_falls_back_to_the_embedded_network_when_totalsegmentator_fails(fake_totalsegmentator, tmp_path,
                                                                             monkeypatch):
    ct_path, _ = small_ct_file(tmp_path)
    monkeypatch.setenv("FAKE_TS_FAIL", "1")
    with pytest.warns(UserWarning, match="TotalSegmentator failed .*CUDA out of memory.*embedded DELICAITE network"):
        result = automatic_mask(read_image(ct_path), ct_path=ct_path, device="cpu")
    assert result.backend == "delicaite" and "CUDA out of memory" in result.review.figures["backend_fallback"]
    with pytest.raises(DelicaiteError, match="TotalSegmentator failed"):  # asked for by name: no fallback
        automatic_mask(read_image(ct_path), ct_path=ct_path, device="cpu", backend="totalsegmentator")
    with pytest.raises(DelicaiteError, match="--backend delicaite"):
        automatic_mask(read_image(ct_path), backend="totalsegmentator", weights=tmp_path)


def test_without_totalsegmentator_auto_is_the_embedded_network(no_totalsegmentator):
    assert not is_installed() and choose_backend("auto") == "delicaite"
    backend, line = describe_backend("auto")
    assert backend == "delicaite" and "install TotalSegmentator" in line
    backend, line = describe_backend("auto", slicer_extension=True)  # the extension, not yet its package
    assert backend == "delicaite" and "run its module once" in line
    with pytest.raises(DelicaiteError) as error:
        describe_backend("totalsegmentator")
    assert str(error.value) == NOT_INSTALLED
    with pytest.raises(DelicaiteError, match="choose one of auto, delicaite, totalsegmentator"):
        choose_backend("nnunet")


def test_segment_cli_records_the_backend_in_its_review(fake_totalsegmentator, tmp_path, capsys):
    from DELICAITELib.cli import main

    ct_path, liver = small_ct_file(tmp_path)
    out = tmp_path / "seg.nii.gz"
    assert main(["segment", str(ct_path), "--out", str(out), "--device", "cpu"]) == 0
    assert "segmenting with TotalSegmentator (--backend auto)" in capsys.readouterr().err
    review = json.loads(review_path(out).read_text())
    assert review["figures"]["backend"] == "totalsegmentator"
    assert np.array_equal(arr(sitk.ReadImage(str(out))), liver.astype(np.uint8))
