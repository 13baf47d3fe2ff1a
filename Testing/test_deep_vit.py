"""The DINOv2-architecture ViT encoder: weights files, official checkpoints, refusals, position grid.

Real crops: IRCADb-17 (three largest tumour slices, its masks) and HCC_009 (arterial and portal-venous
series; no mask, so a box drawn around the large tumour seen on slices 34–36 gives the ROI).
Weights are random (no download, ever); layer-scale gammas are raised so that every block matters.
"""

import math
import os

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from DELICAITELib.errors import DelicaiteError, ModelFileError
from DELICAITELib.features.deep.encoder import (
    DEFAULT_BLOCK,
    ViTEncoder,
    feature_columns,
    load_encoder,
    save_encoder,
)
from DELICAITELib.features.deep.vit import DinoViT, load_dinov2_state_dict
from DELICAITELib.io import Case, read_image
from DELICAITELib.preprocessing import preprocess_case
from DELICAITELib.slices import largest_tumour_slices

D = 384  # ViT-S


def official_vits14_shapes(registers: int = 0) -> dict[str, tuple]:
    """Keys and shapes of facebookresearch/dinov2's dinov2_vits14(_reg) state dict, written out by hand."""
    shapes = {"cls_token": (1, 1, D), "pos_embed": (1, 1 + 37 * 37, D), "mask_token": (1, D),
              "patch_embed.proj.weight": (D, 3, 14, 14), "patch_embed.proj.bias": (D,),
              "norm.weight": (D,), "norm.bias": (D,)}
    if registers:
        shapes["register_tokens"] = (1, registers, D)
    for i in range(12):
        for name, shape in {"norm1.weight": (D,), "norm1.bias": (D,), "attn.qkv.weight": (3 * D, D),
                            "attn.qkv.bias": (3 * D,), "attn.proj.weight": (D, D), "attn.proj.bias": (D,),
                            "ls1.gamma": (D,), "norm2.weight": (D,), "norm2.bias": (D,),
                            "mlp.fc1.weight": (4 * D, D), "mlp.fc1.bias": (4 * D,),
                            "mlp.fc2.weight": (D, 4 * D), "mlp.fc2.bias": (D,), "ls2.gamma": (D,)}.items():
            shapes[f"blocks.{i}.{name}"] = shape
    return shapes


def randomised(model: DinoViT, seed: int) -> DinoViT:
    """Random weights with layer scales of order 1, so a wrongly wired block would show in the features."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("gamma"):
                parameter.uniform_(0.2, 1.0, generator=generator)
            elif name.endswith(("cls_token", "register_tokens", "bias")):
                parameter.normal_(0.0, 0.1, generator=generator)
    return model.eval()


class Payload:
    """Pickles as a call to os.mkdir: loading it would create the marker folder."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.fixture(scope="module")
def ircadb_crops(ircadb17_image, ircadb17_label):
    picked = largest_tumour_slices(ircadb17_label)
    return preprocess_case(Case(ap=ircadb17_image, vp=ircadb17_image, label=ircadb17_label), picked)["AP"]


@pytest.fixture(scope="module")
def hcc009_arrays(hcc009_dir):
    ap = read_image(hcc009_dir / "series-4-recon2-liver-3-phase")
    vp = read_image(hcc009_dir / "series-103-liver-3-phase")  # same geometry as AP (data README)
    boxes = np.zeros(sitk.GetArrayViewFromImage(ap).shape, np.uint8)
    boxes[34:37, 100:260, 140:320] = 2  # the tumour on these slices, by eye (z, rows, columns)
    label = sitk.GetImageFromArray(boxes)
    label.CopyInformation(ap)
    return preprocess_case(Case(ap=ap, vp=vp, label=label), [34, 35, 36])


@pytest.fixture(scope="module")
def vit_small():
    torch.manual_seed(0)
    return randomised(DinoViT.named("vit_small"), seed=1)


@pytest.fixture(scope="module")
def vit_small_features(vit_small, ircadb_crops):
    """Block-4 features of the IRCADb crops straight from the module (computed once, shared)."""
    return ViTEncoder(vit_small).slice_features(ircadb_crops)


def test_saved_encoder_gives_deterministic_documented_features(tmp_path, vit_small, vit_small_features,
                                                               ircadb_crops, hcc009_arrays):
    meta = save_encoder(ViTEncoder(vit_small), tmp_path / "encoder", note="random ViT-S/14 for a test")
    assert meta["format"] == "delicaite-vit-encoder" and meta["format_version"] == 1
    assert meta["state_dict"] == {k: list(s) for k, s in official_vits14_shapes().items()}
    assert meta["architecture"]["num_heads"] == 6 and meta["how_made"] == "random ViT-S/14 for a test"

    first, second = load_encoder(tmp_path / "encoder"), load_encoder(tmp_path / "encoder" / "model.json")
    features = first.slice_features(ircadb_crops)
    assert features.shape == (3, 2 * D) and features.dtype == np.float32 and np.all(np.isfinite(features))
    assert np.array_equal(features, second.slice_features(ircadb_crops))
    assert np.array_equal(features, vit_small_features)  # what the saved module gives

    every_block = first.slice_features_all_blocks(ircadb_crops[:1])
    assert every_block.shape == (12, 1, 2 * D)
    assert np.allclose(every_block[DEFAULT_BLOCK - 1], features[:1], rtol=1e-5, atol=1e-5)
    assert not np.allclose(every_block[DEFAULT_BLOCK - 1], every_block[DEFAULT_BLOCK])

    case = first.case_features(hcc009_arrays)
    expected_names = [f"deep_vit_b4_{phase}_{part}_{k:03d}" for phase in ("ap", "vp")
                      for part in ("cls", "patch") for k in range(D)]
    assert list(case) == expected_names and len(case) == 1536
    values = np.array(list(case.values()))
    assert np.all(np.isfinite(values))
    assert not np.allclose(values[:2 * D], values[2 * D:])  # arterial and portal-venous crops differ
    # A phase's values are the mean over its slices of the per-slice features.
    single = np.array(list(first.case_features({"VP": ircadb_crops}).values()))
    assert np.allclose(single, features.mean(axis=0), rtol=1e-6, atol=1e-6)
    assert feature_columns(D, block=2)[0] == "deep_vit_b2_ap_cls_000"


@pytest.mark.parametrize("variant", ["plain", "registers", "teacher_checkpoint"])
def test_official_dinov2_checkpoint_loads_and_matches_its_module(tmp_path, variant, vit_small, vit_small_features,
                                                                 ircadb_crops):
    if variant == "registers":  # dinov2_vits14_reg: 4 registers, trained with offset 0 and antialias
        torch.manual_seed(2)
        source = randomised(DinoViT.named("vit_small", num_register_tokens=4, interpolate_offset=0.0,
                                          interpolate_antialias=True), seed=3)
    else:
        source = vit_small
    state = source.state_dict()
    expected = official_vits14_shapes(registers=4 if variant == "registers" else 0)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected

    if variant == "teacher_checkpoint":  # a DINO training checkpoint: teacher + student, with heads
        state = {**{f"teacher.backbone.{k}": v for k, v in state.items()},
                 **{f"student.backbone.{k}": torch.zeros_like(v) for k, v in state.items()},
                 "teacher.dino_head.mlp.0.weight": torch.zeros(8, D), "teacher.ibot_head.last_layer.weight": torch.zeros(8)}
    path = tmp_path / "dinov2_vits14.pth"
    torch.save(dict(state), path)

    loaded = load_encoder(path)
    assert loaded.model.architecture()["num_register_tokens"] == (4 if variant == "registers" else 0)
    assert loaded.model.architecture()["img_size"] == 518
    features = loaded.slice_features(ircadb_crops)
    if variant != "registers":
        assert np.array_equal(features, vit_small_features)
    else:  # from the source module's tokens: CLS, and the patch mean that leaves the 4 registers out
        with torch.no_grad():
            images = torch.from_numpy(ircadb_crops).unsqueeze(1).expand(-1, 3, -1, -1)
            tokens = source.block_tokens(images, [DEFAULT_BLOCK])[DEFAULT_BLOCK]
        assert tokens.shape == (3, 1 + 4 + 256, D)
        assert np.allclose(features[:, :D], tokens[:, 0].numpy(), rtol=1e-6, atol=1e-6)
        assert np.allclose(features[:, D:], tokens[:, 5:].mean(dim=1).numpy(), rtol=1e-6, atol=1e-6)


def small_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return DinoViT(embed_dim=64, depth=2, num_heads=1, img_size=56).state_dict()


def test_refusals(tmp_path):
    small = DinoViT(embed_dim=64, depth=2, num_heads=1, img_size=56)
    save_encoder(ViTEncoder(small), tmp_path / "enc")
    weights = tmp_path / "enc" / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_encoder(tmp_path / "enc")

    marker = tmp_path / "payload-ran"
    torch.save({**small_state(), "payload": Payload(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(ModelFileError, match="not a plain tensor checkpoint"):
        load_encoder(tmp_path / "evil.pth")
    assert not marker.exists()  # refused without running the pickled call

    incomplete = small_state()
    del incomplete["blocks.1.attn.qkv.weight"]
    torch.save(incomplete, tmp_path / "incomplete.pth")
    with pytest.raises(ModelFileError, match=r"missing blocks\.1\.attn\.qkv\.weight"):
        load_encoder(tmp_path / "incomplete.pth")

    wrong = {**small_state(), "blocks.0.mlp.fc1.weight": torch.zeros(10, 64)}
    with pytest.raises(DelicaiteError, match="wrong shapes: blocks.0.mlp.fc1.weight"):
        load_dinov2_state_dict(wrong)
    with pytest.raises(DelicaiteError, match="ViT-g"):
        load_dinov2_state_dict({**small_state(), "blocks.0.mlp.w12.weight": torch.zeros(4, 64)})
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ModelFileError, match="not a plain tensor checkpoint"):
        load_encoder(tmp_path / "text.pth")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ModelFileError, match="not a state dict"):
        load_encoder(tmp_path / "tensor.pth")
    with pytest.raises(ModelFileError, match="does not exist"):
        load_encoder(tmp_path / "nowhere")


def test_position_grid_interpolation():
    model = DinoViT(depth=1)  # ViT-S width, official 518 px: a 37 × 37 position grid
    assert model.interpolated_pos_embed(37, 37) is model.pos_embed  # matching size: no interpolation
    with torch.no_grad():
        model.patch_embed.proj.weight.zero_()
        model.patch_embed.proj.bias.zero_()
        tokens = model.prepare_tokens(torch.zeros(1, 3, 518, 518))
        assert torch.equal(tokens[0, 1:], model.pos_embed[0, 1:])
        assert model.prepare_tokens(torch.zeros(1, 3, 224, 224)).shape == (1, 1 + 16 * 16, D)

        # A smooth position field is resampled, not scrambled: the 16 × 16 grid is that field at the
        # official scale factor's source coordinates (half-pixel centres, scale (16 + 0.1) / 37).
        rows, cols = torch.meshgrid(torch.arange(37.0), torch.arange(37.0), indexing="ij")
        freq = torch.linspace(0.02, 0.12, D)
        def field(r, c):
            return torch.cos(2 * math.pi * freq * (r[..., None] + 0.7 * c[..., None]) / 37)
        model.pos_embed[0, 1:] = field(rows, cols).reshape(-1, D)
        small = model.interpolated_pos_embed(16, 16)
        assert torch.equal(small[0, 0], model.pos_embed[0, 0])  # the CLS position is kept as is
        source = (torch.arange(16.0) + 0.5) * 37 / 16.1 - 0.5
        target = field(*torch.meshgrid(source, source, indexing="ij")).reshape(-1, D)
        assert torch.allclose(small[0, 1:], target, atol=0.02)
        # …and equals the official call written out: bicubic, scale_factor, no antialias.
        grid = model.pos_embed[:, 1:].reshape(1, 37, 37, D).permute(0, 3, 1, 2)
        official = F.interpolate(grid, scale_factor=(16.1 / 37, 16.1 / 37), mode="bicubic", antialias=False)
        assert torch.equal(small[0, 1:], official.permute(0, 2, 3, 1).reshape(-1, D))


def test_training_checkpoint_wrappers_and_chunked_blocks_map_to_official_keys():
    state = small_state()
    # DINOv2's trainer: {"model": {"teacher.backbone.blocks.{chunk}.{i}.…", "student.…", heads}, "iteration": n}
    chunked = {k.replace(f"blocks.{k.split('.')[1]}.", f"blocks.{k.split('.')[1]}.{k.split('.')[1]}.")
               if k.startswith("blocks.") else k: v for k, v in state.items()}
    checkpoint = {"model": {**{f"teacher.backbone.{k}": v for k, v in chunked.items()},
                            **{f"student.backbone.{k}": torch.zeros_like(v) for k, v in chunked.items()},
                            "teacher.dino_head.last_layer.weight": torch.zeros(4)}, "iteration": 7}
    assert "teacher.backbone.blocks.1.1.attn.qkv.weight" in checkpoint["model"]
    loaded = load_dinov2_state_dict(checkpoint).state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)


def test_an_encoder_with_an_input_size_resizes_crops_and_keeps_it_in_its_file(tmp_path):
    torch.manual_seed(0)
    encoder = ViTEncoder(DinoViT(embed_dim=48, depth=2, num_heads=3, patch_size=8, img_size=32), input_size=32)
    crops = np.random.default_rng(0).normal(size=(2, 224, 224)).astype(np.float32)
    small = torch.nn.functional.interpolate(torch.from_numpy(crops)[:, None], size=(32, 32), mode="bilinear",
                                            align_corners=False, antialias=True)[:, 0].numpy()
    np.testing.assert_array_equal(encoder.slice_features(crops, block=2), encoder.slice_features(small, block=2))
    save_encoder(encoder, tmp_path / "small")
    loaded = load_encoder(tmp_path / "small")
    assert loaded.input_size == 32
    np.testing.assert_array_equal(loaded.slice_features(crops, block=2), encoder.slice_features(crops, block=2))
