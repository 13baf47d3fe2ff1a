"""Radiomics on the real IRCADb-17 tumour: naming, determinism, agreement with the mask's own area."""

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from DELICAITELib.errors import MaskError
from DELICAITELib.features import DEFAULT_PARAMS, extract_radiomics, load_radiomics_settings
from DELICAITELib.slices import largest_tumour_slices


@pytest.fixture(scope="module")
def ircadb_case(ircadb17_image, ircadb17_label):
    slices = [s.index for s in largest_tumour_slices(ircadb17_label)]
    return ircadb17_image, ircadb17_label, slices


@pytest.fixture(scope="module")
def ircadb_features(ircadb_case):
    ct, label, slices = ircadb_case
    return extract_radiomics({"AP": ct, "VP": ct}, label, slices)


def test_features_are_named_by_phase_and_class(ircadb_features):
    names = list(ircadb_features)
    ap = [n.removeprefix("AP_") for n in names if n.startswith("AP_")]
    vp = [n.removeprefix("VP_") for n in names if n.startswith("VP_")]
    assert ap == vp and len(ap) + len(vp) == len(names)
    # The study's top-ranked feature must be there under its study name.
    assert "VP_original_glrlm_LongRunHighGrayLevelEmphasis" in ircadb_features
    classes = {n.split("_")[2] for n in names}
    assert classes == {"firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape2D"}
    assert all(np.isfinite(v) for v in ircadb_features.values())


def test_same_ct_as_both_phases_gives_identical_values(ircadb_features):
    for name, value in ircadb_features.items():
        if name.startswith("AP_"):
            assert ircadb_features["VP_" + name[3:]] == value


def test_shape_area_matches_the_mask(ircadb_case, ircadb_features):
    """shape2D PixelSurface of the largest slice = tumour pixel count x in-plane pixel area."""
    ct, label, slices = ircadb_case
    tumour_pixels = int((sitk.GetArrayViewFromImage(label)[slices[0]] == 2).sum())
    sx, sy = ct.GetSpacing()[:2]
    assert ircadb_features["AP_original_shape2D_PixelSurface"] == pytest.approx(tumour_pixels * sx * sy, rel=1e-9)


def test_hu_statistics_are_those_of_the_tumour(ircadb_case, ircadb_features):
    """Mean HU over the three slices (after in-plane resampling) stays close to the raw voxel mean."""
    ct, label, slices = ircadb_case
    hu = sitk.GetArrayViewFromImage(ct)[slices]
    inside = sitk.GetArrayViewFromImage(label)[slices] == 2
    assert ircadb_features["VP_original_firstorder_Mean"] == pytest.approx(hu[inside].mean(), abs=3.0)


def test_extraction_is_deterministic(ircadb_case, ircadb_features):
    ct, label, slices = ircadb_case
    again = extract_radiomics({"VP": ct}, label, slices)
    assert all(again[n] == ircadb_features[n] for n in again)


def test_settings_are_versioned_and_replaceable(tmp_path, ircadb_case):
    params, version = load_radiomics_settings()
    assert version >= 1 and params["setting"]["force2D"] is True
    custom = yaml.safe_load(DEFAULT_PARAMS.read_text())
    custom["featureClass"] = {"firstorder": ["Mean", "Median"]}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(custom))
    ct, label, slices = ircadb_case
    features = extract_radiomics({"AP": ct}, label, slices, params=path)
    assert sorted(features) == ["AP_original_firstorder_Mean", "AP_original_firstorder_Median"]


def test_slice_without_tumour_is_refused(ircadb_case):
    ct, label, _ = ircadb_case
    with pytest.raises(MaskError, match="empty on slice 0"):
        extract_radiomics({"AP": ct}, label, [0])
