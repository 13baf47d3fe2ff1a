"""Faulty inputs built from the real CTs of ../shared/data, for the fault matrix and the fail-safe tests.

Each builder writes what it needs under a work folder and returns a :class:`Fault`: the `delicaite`
arguments that meet the fault, the output folder to watch and what a fail-safe program must do
("refuse": exit 2 with one ``error:`` line, the previous result untouched; "run": exit 0). The base
case is IRCADb-17 (arterial = portal-venous, its expert liver and tumours) with the demo model.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IRCADB = "ircadb-17"


@dataclass
class Fault:
    name: str
    what: str
    argv: list[str]
    out: Path | None  # the folder or file whose previous content must survive a refusal
    expect: str = "refuse"  # or "run"
    needs_previous: bool = True  # put a good previous result in `out` first
    extra: dict = field(default_factory=dict)


class Inputs:
    """The base case's files, written once under ``work``."""

    def __init__(self, work: Path, data: Path = SHARED_DATA):
        from DELICAITELib.demo import DEMO_CLINICAL, demo_model_dir
        from DELICAITELib.io import read_image, read_label

        self.work, self.data = Path(work), Path(data)
        self.work.mkdir(parents=True, exist_ok=True)
        self.dicom = self.data / IRCADB / "PATIENT_DICOM"
        self.ap = self.work / "ap.nii.gz"
        self.mask = self.work / "mask.nii.gz"
        self.clinical = self.work / "clinical.json"
        self.model = demo_model_dir()
        if not self.ap.exists():
            image = read_image(self.dicom)
            sitk.WriteImage(image, str(self.ap))
            sitk.WriteImage(read_label(self.data / IRCADB, reference=image), str(self.mask))
        if not self.clinical.exists():
            self.clinical.write_text(json.dumps(DEMO_CLINICAL), encoding="utf-8")
        self.clinical_values = dict(DEMO_CLINICAL)

    def case(self, out: Path, *, ap=None, vp=None, mask="default", clinical=None, model=None) -> list[str]:
        argv = ["case", "--ap", str(ap or self.ap), "--vp", str(vp or ap or self.ap),
                "--clinical", str(clinical or self.clinical), "--model", str(model or self.model), "--out", str(out),
                "--device", "cpu"]
        mask = self.mask if mask == "default" else mask
        return argv + (["--mask", str(mask)] if mask is not None else [])

    def image(self) -> sitk.Image:
        return sitk.ReadImage(str(self.ap))

    def label(self) -> sitk.Image:
        return sitk.ReadImage(str(self.mask))


# --- 1. confident wrong answers ------------------------------------------------------------------

def pelvis_without_mask(inputs: Inputs, work: Path) -> Fault:
    ct = sitk.ReadImage(str(inputs.data / "totalseg-example" / "example_ct.nii.gz"))[:, :, 0:40]
    path = work / "pelvis.nii.gz"
    sitk.WriteImage(ct, str(path))
    return Fault("pelvis_without_mask", "a pelvis-only CT, no mask: auto-segmentation finds a 'liver'",
                 inputs.case(work / "out", ap=path, mask=None), work / "out")


def mask_without_geometry(inputs: Inputs, work: Path) -> Fault:
    """The mask written from its array: spacing 1 mm, origin 0, identity direction, same voxel count."""
    bare = sitk.GetImageFromArray(sitk.GetArrayFromImage(inputs.label()))
    path = work / "bare_mask.nii.gz"
    sitk.WriteImage(bare, str(path))
    return Fault("mask_without_geometry", "mask whose header lost its spacing and origin",
                 inputs.case(work / "out", mask=path), work / "out")


def mask_wrong_spacing(inputs: Inputs, work: Path) -> Fault:
    label = inputs.label()
    label.SetSpacing(tuple(2.0 * s for s in label.GetSpacing()))
    path = work / "spacing_mask.nii.gz"
    sitk.WriteImage(label, str(path))
    return Fault("mask_wrong_spacing", "mask with twice the CT's spacing", inputs.case(work / "out", mask=path),
                 work / "out")


def mask_shifted(inputs: Inputs, work: Path, shift_mm: float = 20.0) -> Fault:
    label = inputs.label()
    origin = np.asarray(label.GetOrigin())
    label.SetOrigin(tuple(origin + np.array([0.0, 0.0, shift_mm])))
    path = work / "shifted_mask.nii.gz"
    sitk.WriteImage(label, str(path))
    return Fault("mask_shifted_20mm", "mask on a grid 20 mm off the CT's", inputs.case(work / "out", mask=path),
                 work / "out")


def portal_phase_partial(inputs: Inputs, work: Path) -> Fault:
    """A portal-venous phase covering 45 % of the arterial one's slices, none of the tumour's."""
    image, label = inputs.image(), inputs.label()
    tumour_z = np.flatnonzero((sitk.GetArrayViewFromImage(label) == 2).any(axis=(1, 2)))
    n = image.GetSize()[2]
    keep = int(0.45 * n)
    start = 0 if tumour_z.min() >= keep else n - keep  # the slab away from the tumour
    if start and tumour_z.max() >= start:
        start = int(tumour_z.max()) + 1
        keep = n - start
    path = work / "vp_partial.nii.gz"
    sitk.WriteImage(image[:, :, start:start + keep], str(path))
    return Fault("vp_partial_coverage", "portal-venous phase covering 45 % of the arterial slices, not the tumour",
                 inputs.case(work / "out", vp=path), work / "out")


def _dicom_copy(inputs: Inputs, work: Path) -> tuple[Path, list[Path]]:
    folder = work / "dicom"
    shutil.copytree(inputs.dicom, folder)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    import pydicom

    files.sort(key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    return folder, files


def dicom_slice(kind: str):
    def build(inputs: Inputs, work: Path) -> Fault:
        folder, files = _dicom_copy(inputs, work)
        victim = files[len(files) // 2]
        if kind == "truncated":
            victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
        elif kind == "empty":
            victim.write_bytes(b"")
        elif kind == "random":
            victim.write_bytes(np.random.default_rng(0).bytes(victim.stat().st_size))
        elif kind == "missing":
            victim.unlink()
        return Fault(f"dicom_{kind}_slice", f"one {kind} slice in the middle of the DICOM series",
                     inputs.case(work / "out", ap=folder), work / "out", extra={"file": victim.name})
    return build


def _resign(folder: Path, edit, edit_bundle=None) -> None:
    """Edit a model's interaction part (and its bundle's own model.json) and recompute every sha256, as a
    deliberate hand edit would."""
    from DELICAITELib.storage.artifacts import _canonical, _sha256

    part = folder / "interaction" / "model.json"
    meta = json.loads(part.read_text(encoding="utf-8"))
    edit(meta)
    meta.pop("metadata_sha256")
    meta["metadata_sha256"] = _sha256(_canonical(meta))
    part.write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
    bundle = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    bundle["parts"]["interaction"] = meta["metadata_sha256"]
    if edit_bundle is not None:
        edit_bundle(bundle)
    bundle.pop("metadata_sha256")
    bundle["metadata_sha256"] = _sha256(_canonical(bundle))
    (folder / "model.json").write_text(json.dumps(bundle, indent=2, sort_keys=True), encoding="utf-8")


def model_edit(kind: str):
    def build(inputs: Inputs, work: Path) -> Fault:
        folder = work / "model"
        shutil.copytree(inputs.model, folder)

        def edit(meta):
            if kind == "zero_std":
                meta["scaler"]["std"][0] = 0.0
            elif kind == "absurd_shape":
                meta["n_features"] = -3
            elif kind == "edited":
                meta["scaler"]["mean"][0] += 30.0  # every patient 30 years younger to the model
        def edit_bundle(bundle):
            if kind == "newer_version":
                bundle["library_versions"]["delicaite"] = "9.0.0"
        _resign(folder, edit, edit_bundle)
        expect = "run" if kind == "edited" else "refuse"
        return Fault(f"model_{kind}", {"zero_std": "model whose scaler has a zero standard deviation (sums recomputed)",
                                      "absurd_shape": "model.json with a negative feature count (sums recomputed)",
                                      "edited": "model with a hand-edited scaler and recomputed sums (only a signature "
                                                "could tell)",
                                      "newer_version": "model written by a newer delicaite (9.0.0)"}[kind],
                     inputs.case(work / "out", model=folder), work / "out", expect=expect)
    return build


def mr_like_with_padding(inputs: Inputs, work: Path) -> Fault:
    """MR-like intensities (0-1500, no air) with three rows of -1024 padding on top."""
    image = inputs.image()
    values = sitk.GetArrayFromImage(image)
    mr = np.clip((values + 1000.0) * 0.75, 0, 1500).astype(np.float32)
    mr[:, :3, :] = -1024.0
    fake = sitk.GetImageFromArray(mr)
    fake.CopyInformation(image)
    path = work / "mr.nii.gz"
    sitk.WriteImage(fake, str(path))
    return Fault("mr_with_ct_padding", "MR-like intensities with three rows of -1024 padding",
                 inputs.case(work / "out", ap=path), work / "out")


def clinical_text(name: str, what: str, text: bytes | str):
    def build(inputs: Inputs, work: Path) -> Fault:
        path = work / "clinical.json"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text if not callable(text) else text(inputs), encoding="utf-8")
        return Fault(name, what, inputs.case(work / "out", clinical=path), work / "out")
    return build


def _duplicate_key(inputs_values: dict) -> str:
    body = json.dumps(inputs_values)[:-1]
    return body + ', "age": 81}'


# --- 2. lost or mixed results --------------------------------------------------------------------
# (the batch faults and the concurrent runs are built by the matrix script itself)

# --- 3. one line, not a traceback ----------------------------------------------------------------

def out_is_file(inputs: Inputs, work: Path) -> Fault:
    path = work / "out"
    path.write_text("a file where the output folder should be\n")
    return Fault("out_is_a_file", "--out names an existing file", inputs.case(path), path, needs_previous=False)


def out_parent_is_file(inputs: Inputs, work: Path) -> Fault:
    parent = work / "parent"
    parent.write_text("a file\n")
    return Fault("out_parent_is_a_file", "--out's parent is a file", inputs.case(parent / "out"), parent,
                 needs_previous=False)


def vp_symlink_loop(inputs: Inputs, work: Path) -> Fault:
    a, b = work / "a.nii.gz", work / "b.nii.gz"
    os.symlink(b, a)
    os.symlink(a, b)
    return Fault("vp_symlink_loop", "--vp is a symlink loop", inputs.case(work / "out", vp=a), work / "out")


def one_voxel_tumour(inputs: Inputs, work: Path) -> Fault:
    label = sitk.GetArrayFromImage(inputs.label())
    label[label == 2] = 1
    z, y, x = np.argwhere(label == 1)[len(np.argwhere(label == 1)) // 2]
    label[z, y, x] = 2
    image = sitk.GetImageFromArray(label)
    image.CopyInformation(inputs.label())
    path = work / "one_voxel.nii.gz"
    sitk.WriteImage(image, str(path))
    return Fault("one_voxel_tumour", "a tumour of one voxel", inputs.case(work / "out", mask=path), work / "out")


def segment_out_without_suffix(inputs: Inputs, work: Path) -> Fault:
    return Fault("segment_out_without_suffix", "segment --out without a file suffix",
                 ["segment", str(inputs.ap), "--out", str(work / "seg"), "--device", "cpu"], work / "seg",
                 needs_previous=False)


def eval_seg_paths(inputs: Inputs, work: Path) -> Fault:
    return Fault("eval_seg_paths", "eval-seg metrics must not hold the input paths",
                 ["eval-seg", "--pred", str(inputs.mask), "--ref", str(inputs.mask), "--out", str(work / "m.json")],
                 work / "m.json", expect="run", needs_previous=False, extra={"no_paths_in": str(work / "m.json")})


def batch_no_resume_corrupt_model(inputs: Inputs, work: Path) -> Fault:
    """Two done cases, then `batch --no-resume` with a model whose weights lost a byte."""
    cases = work / "cases"
    for name in ("case-a", "case-b"):
        (cases / name).mkdir(parents=True)
        for source, target in ((inputs.ap, "ap.nii.gz"), (inputs.mask, "mask.nii.gz"), (inputs.clinical, "clinical.json")):
            os.symlink(source, cases / name / target)
    out = work / "out"
    model = work / "model"
    shutil.copytree(inputs.model, model)
    argv = ["batch", str(cases), "--out", str(out), "--model", str(model)]
    weights = model / "interaction" / "weights.npz"

    def corrupt():
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    return Fault("batch_no_resume_corrupt_model", "batch --no-resume over two done cases with a corrupted model",
                 argv + ["--no-resume"], out, needs_previous=False,
                 extra={"before": (argv, corrupt)})


def concurrent_case_runs(inputs: Inputs, work: Path) -> Fault:
    return Fault("two_runs_one_out", "two `case` runs started together on one --out",
                 inputs.case(work / "out"), work / "out", expect="one_of_two", needs_previous=False)


FAULTS = {
    "pelvis_without_mask": pelvis_without_mask,
    "mask_without_geometry": mask_without_geometry,
    "mask_wrong_spacing": mask_wrong_spacing,
    "mask_shifted_20mm": mask_shifted,
    "vp_partial_coverage": portal_phase_partial,
    "dicom_truncated_slice": dicom_slice("truncated"),
    "dicom_empty_slice": dicom_slice("empty"),
    "dicom_random_slice": dicom_slice("random"),
    "dicom_missing_slice": dicom_slice("missing"),
    "model_zero_std": model_edit("zero_std"),
    "model_absurd_shape": model_edit("absurd_shape"),
    "model_edited": model_edit("edited"),
    "model_newer_version": model_edit("newer_version"),
    "mr_with_ct_padding": mr_like_with_padding,
    "clinical_duplicate_key": clinical_text("clinical_duplicate_key", "a duplicate key in the clinical JSON",
                                            lambda inputs: _duplicate_key(inputs.clinical_values)),
    "clinical_latin1": clinical_text("clinical_latin1", "a Latin-1 clinical file",
                                     '{"age": 54, "note": "Müller"}'.encode("latin-1")),
    "clinical_deeply_nested": clinical_text("clinical_deeply_nested", "clinical JSON nested 100 000 deep",
                                            "[" * 100_000 + "]" * 100_000),
    "clinical_overlong_value": clinical_text("clinical_overlong_value", "a 5 MB clinical value",
                                             lambda inputs: json.dumps({**inputs.clinical_values, "sex": "x" * 5_000_000})),
    "out_is_a_file": out_is_file,
    "out_parent_is_a_file": out_parent_is_file,
    "vp_symlink_loop": vp_symlink_loop,
    "one_voxel_tumour": one_voxel_tumour,
    "segment_out_without_suffix": segment_out_without_suffix,
    "eval_seg_paths": eval_seg_paths,
    "batch_no_resume_corrupt_model": batch_no_resume_corrupt_model,
    "two_runs_one_out": concurrent_case_runs,
}
