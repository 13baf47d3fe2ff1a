"""The feature spec: what a case's image features are, recorded so that a model gets the same features
at every door, and refused when its files are no longer the ones the features were made with."""

import json

import pytest
import torch

from DELICAITELib.case import CaseEngine
from DELICAITELib.errors import DelicaiteError
from DELICAITELib.features.deep.encoder import ViTEncoder, save_encoder
from DELICAITELib.features.deep.vit import DinoViT
from DELICAITELib.features import engines
from DELICAITELib.features.spec import FeatureSpec
from DELICAITELib.phantom import make_phantom

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_encoder(folder, seed: int):
    torch.manual_seed(seed)
    save_encoder(ViTEncoder(DinoViT(embed_dim=16, depth=4, num_heads=2, patch_size=16, img_size=64)), folder)
    return folder


@pytest.fixture(scope="module")
def prepared():
    phantom = make_phantom()
    return CaseEngine().prepare(phantom.ap, phantom.vp, phantom.label)


def test_spec_round_trip_and_the_features_it_names(prepared, tmp_path):
    spec = FeatureSpec.from_options(deep_encoder=tiny_encoder(tmp_path / "encoder", 0))
    assert spec.radiomics_engine == engines.choose() and spec.radiomics_version == 2
    spec.save(tmp_path / "spec.json")
    again = FeatureSpec.load(tmp_path / "spec.json")
    assert again == spec and again.fingerprint() == spec.fingerprint()
    values = CaseEngine(feature_spec=again).features(prepared).values
    assert sum(n.startswith(("AP_", "VP_")) for n in values) > 200
    assert sum(n.startswith("deep_vit_b4_") for n in values) == 2 * 2 * 16
    assert CaseEngine(feature_spec=FeatureSpec.clinical_only()).features(prepared).values == {}


def test_a_changed_encoder_is_refused(tmp_path):
    spec = FeatureSpec.from_options(deep_encoder=tiny_encoder(tmp_path / "encoder", 0))
    spec.save(tmp_path / "spec.json")
    tiny_encoder(tmp_path / "encoder", 1)  # other weights under the same name
    with pytest.raises(DelicaiteError, match="deep_encoder_sha256"):
        FeatureSpec.load(tmp_path / "spec.json")
    with pytest.raises(DelicaiteError, match="deep encoder not found"):
        FeatureSpec.from_options(deep_encoder=tmp_path / "nowhere").check()


def test_another_radiomics_release_is_said_in_the_result(prepared, tmp_path):
    record = FeatureSpec.from_options().to_json()
    record["radiomics_engine"] = "pyradiomics 2.2.0"
    spec = FeatureSpec.from_json(json.loads(json.dumps(record)))
    CaseEngine(feature_spec=spec).features(prepared)
    assert any("computed with pyradiomics 2.2.0" in w for w in prepared.warnings)
