"""The two radiomics engines: mirp (wheels only, for Slicer without a compiler) and pyradiomics.

On the real IRCADb-17 tumour: mirp gives the bundled settings' features under pyradiomics' names, and where
the agreement record (measured by Testing/benchmarks/radiomics_agreement.py) says they agree, they agree
here too. A model records its engine; a case on the other engine goes on only when the record covers
every feature, else it stops and says what to install. The record must belong to the bundled settings,
and the README's table must say what the record says.
"""

import json
import re
from pathlib import Path

import pytest

from DELICAITELib.errors import DelicaiteError
from DELICAITELib.features import engines
from DELICAITELib.features.radiomics import DEFAULT_PARAMS, extract_radiomics, radiomics_feature_names
from DELICAITELib.features.spec import FeatureSpec
from DELICAITELib.slices import largest_tumour_slices

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def both_engines(ircadb17_image, ircadb17_label):
    slices = [s.index for s in largest_tumour_slices(ircadb17_label)]
    return {engine: extract_radiomics({"AP": ircadb17_image}, ircadb17_label, slices, engine=engine)
            for engine in engines.ENGINES}


def test_mirp_gives_pyradiomics_names_and_agrees_where_the_record_says(both_engines):
    mirp, pyradiomics = both_engines["mirp"], both_engines["pyradiomics"]
    assert set(mirp) < set(pyradiomics)
    assert not any("shape2D" in name for name in mirp)  # no 2-D shape in mirp: never a look-alike value
    record = engines.agreement_record()
    agreeing = [name for name, entry in record["features"].items() if entry["agrees"]]
    assert len(agreeing) >= 60
    for name in agreeing:
        a, b = pyradiomics[f"AP_{name}"], mirp[f"AP_{name}"]
        assert abs(a - b) <= record["tolerance"] * max(abs(a), abs(b), 1e-12), name
    # the disagreements are real: one of them differs on this tumour by what the record says
    assert abs(pyradiomics["AP_original_firstorder_TotalEnergy"] / mirp["AP_original_firstorder_TotalEnergy"] - 1) > 0.1


def test_the_record_belongs_to_the_bundled_settings_and_the_readme_shows_it():
    record = engines.agreement_record()
    assert record["settings_sha256"] == FeatureSpec.from_options(DEFAULT_PARAMS).radiomics_sha256(), \
        "the bundled radiomics settings changed: rerun Testing/benchmarks/radiomics_agreement.py --record ..."
    assert set(record["tumours"]) == {"IRCADb-17", "LiTS-117", "HCC_009 AP", "HCC_009 VP"}
    text = README.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| ((?:firstorder|glcm|glrlm|glszm|gldm|ngtdm)_\w+) \|.*\| (yes|\*\*no\*\*) \|$", text, re.M))
    assert len(rows) == len(record["features"])
    for name, entry in record["features"].items():
        assert rows[name.removeprefix("original_")] == ("yes" if entry["agrees"] else "**no**"), name


def _pretend_only(monkeypatch, engine):
    real = engines.installed
    monkeypatch.setattr(engines, "installed", lambda e: real(e) if e == engine else None)


def test_a_model_on_the_other_engine_is_refused_naming_what_differs(monkeypatch):
    spec = FeatureSpec.from_options(radiomics_engine="pyradiomics")
    assert spec.radiomics_engine.startswith("pyradiomics")
    _pretend_only(monkeypatch, "mirp")
    with pytest.raises(DelicaiteError, match=r"not shown to agree on original_firstorder_TotalEnergy, .* and 12 more .*install SlicerRadiomics.*--radiomics-engine mirp"):
        spec.check()


def test_the_other_engine_is_taken_when_every_feature_agrees(monkeypatch):
    settings = {"setting": {"binWidth": 25, "force2D": True, "force2Ddimension": 0, "label": 1},
                "featureClass": {"firstorder": ["Mean", "Median", "Entropy"]}}
    spec = FeatureSpec.from_options(settings, radiomics_engine="mirp")
    names = radiomics_feature_names(settings)
    assert names == ["original_firstorder_Mean", "original_firstorder_Median", "original_firstorder_Entropy"]
    record = {"settings_sha256": spec.radiomics_sha256(), "features": {n: {"agrees": True} for n in names}}
    monkeypatch.setattr(engines, "agreement_record", lambda: record)
    _pretend_only(monkeypatch, "pyradiomics")
    assert spec.engine_here().startswith("pyradiomics")
    record["features"]["original_firstorder_Entropy"]["agrees"] = False
    with pytest.raises(DelicaiteError, match="original_firstorder_Entropy"):
        spec.engine_here()
    record["features"]["original_firstorder_Entropy"]["agrees"] = True
    record["settings_sha256"] = "measured with other settings"
    with pytest.raises(DelicaiteError, match="not shown to agree"):
        spec.engine_here()


def test_no_engine_at_all_says_what_to_install(monkeypatch):
    monkeypatch.setattr(engines, "installed", lambda e: None)
    with pytest.raises(DelicaiteError, match=r"mirp==2\.5\.0"):
        FeatureSpec.from_options()
    with pytest.raises(DelicaiteError, match="unknown radiomics engine"):
        engines.choose("cuda")


def test_the_spec_file_keeps_the_engine_and_our_settings_block(tmp_path):
    spec = FeatureSpec.from_options(radiomics_engine="mirp")
    saved = json.loads(spec.save(tmp_path / "feature_spec.json").read_text())
    assert saved["radiomics_engine"].startswith("mirp ")
    assert saved["radiomics"]["delicaite"]["resample_before_engine"] is True
    assert FeatureSpec.load(tmp_path / "feature_spec.json").radiomics_engine == spec.radiomics_engine
