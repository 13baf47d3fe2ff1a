"""Finding CT/label training pairs in a folder, and the labelled volumes of ../shared/data.

Recognised layouts (first match wins, in this order):

- **MSD Task03_Liver**: ``dataset.json`` ("training": image/label entries) and/or ``imagesTr/`` +
  ``labelsTr/`` with the same file names (nnU-Net's ``_0000`` channel suffix is understood).
- **LiTS**: ``volume-N.nii[.gz]`` + ``segmentation-N.nii[.gz]`` anywhere below the folder.
- **3D-IRCADb**: a patient folder holding ``PATIENT_DICOM/`` + ``MASKS_DICOM/``, or a folder of them.
- **Generic NIfTI/NRRD pairs**: ``labels/<same name>`` beside the image, or ``<name>_label|_seg|_mask``.

All label maps use 0 background / 1 liver / 2 tumour (LiTS and MSD already do).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import DelicaiteError
from ..io import check_ct, read_image, read_label
from ..io.images import VOLUME_SUFFIXES
from ..io.labels import check_label

LAYOUTS = (
    "MSD Task03 (dataset.json or imagesTr/ + labelsTr/)",
    "LiTS (volume-N.nii[.gz] + segmentation-N.nii[.gz])",
    "3D-IRCADb (PATIENT_DICOM/ + MASKS_DICOM/ per patient)",
    "NIfTI/NRRD pairs (labels/<same name>, or <name>_label/_seg/_mask)",
)
LABEL_SUFFIXES = ("_label", "_labels", "_seg", "_mask")
LABEL_FOLDERS = ("labels", "labelsTr", "masks", "segmentations")
# lits-117 in ../shared/data is a 128³ crop tight around the liver, without spacing in its header.
# Estimated from the anatomy in it: a vertebral level (body + disc) spans 21.5 voxels in z and a
# vertebral body is 32 voxels deep (y), both ~33 mm in an adult; the aorta is 16 voxels (~20 mm)
# and a disc 50 voxels (~45 mm) wide. That gives ~1.1 mm in-plane and ~1.6 mm between slices, and a
# liver (tumour included) of 1.19 L with 0.25 L of tumour; see the model card.
LITS117_SPACING_MM = (1.1, 1.1, 1.6)
TOTALSEG_LIVER = 5
# TotalSegmentator (v2) classes beside the liver that a liver network takes for it: spleen, kidneys,
# gallbladder, stomach, pancreas, small bowel, duodenum, colon, heart, aorta, inferior vena cava, portal
# and splenic vein. Training centres patches on them too (``neighbour_ratio``); they stay background.
TOTALSEG_NEIGHBOURS = (1, 2, 3, 4, 6, 7, 18, 19, 20, 51, 52, 63, 64)
# example_ct.nii.gz slices 0-55 (femoral heads to the lower lumbar spine, 168 mm) hold no liver
# (checked by eye; the liver's tip ends near slice 70 and example_seg labels it from slice 82 up).
# Not used for training (as a negative it cost 0.08 of mean leave-one-out liver Dice); the
# benchmarks use it to measure false-positive liver outside the liver's region.
PELVIS_SLICES = (0, 56)

@dataclass(frozen=True)
class TrainingPair:
    """One CT and its label map on disk; ``kind`` names the layout it was found in."""

    name: str
    image_path: Path
    label_path: Path
    kind: str


def find_training_pairs(folder) -> list[TrainingPair]:
    """All image/label pairs under ``folder`` in one of :data:`LAYOUTS`; DelicaiteError when none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DelicaiteError(f"training data folder not found: {folder}")
    for finder in (_msd_pairs, _lits_pairs, _ircadb_pairs, _generic_pairs):
        pairs = finder(folder)
        if pairs:
            return sorted(pairs, key=lambda p: _natural_key(p.name))
    zipped = sorted(p.name for p in folder.rglob("*.zip"))[:3]
    hint = f" (found {', '.join(zipped)}: unzip them first)" if zipped else ""
    raise DelicaiteError(
        f"no training pairs recognised in {folder}{hint}; expected one of: " + "; ".join(LAYOUTS)
    )


def load_pair(pair: TrainingPair) -> tuple[sitk.Image, sitk.Image]:
    """(CT as float32 HU, label map UInt8 0/1/2 on the CT grid) of one pair."""
    image = read_image(pair.image_path)
    return image, read_label(pair.label_path, reference=image)


# --- layouts -------------------------------------------------------------------------------------

def _is_volume(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(VOLUME_SUFFIXES)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _msd_pairs(folder: Path) -> list[TrainingPair]:
    pairs = []
    manifest = folder / "dataset.json"
    if manifest.is_file():
        try:
            entries = json.loads(manifest.read_text(encoding="utf-8")).get("training", [])
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError) as exc:
            raise DelicaiteError(f"{manifest} is not a readable MSD dataset.json ({exc})") from None
        for entry in entries:
            if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
                continue
            image, label = folder / entry["image"], folder / entry["label"]
            if image.is_file() and label.is_file():
                pairs.append(TrainingPair(_stem(image), image, label, "msd"))
        if pairs:
            return pairs
    images, labels = folder / "imagesTr", folder / "labelsTr"
    if images.is_dir() and labels.is_dir():
        for image in filter(_is_volume, images.iterdir()):
            # nnU-Net names the single CT channel <case>_0000.nii.gz and its label <case>.nii.gz
            stem = re.sub(r"_0000$", "", _stem(image))
            suffix = image.name[len(_stem(image)):]
            for label in (labels / image.name, labels / f"{stem}{suffix}"):
                if label.is_file():
                    pairs.append(TrainingPair(stem, image, label, "msd"))
                    break
    return pairs


def _lits_pairs(folder: Path) -> list[TrainingPair]:
    pattern = re.compile(r"^(volume|segmentation)-(\d+)\.nii(\.gz)?$")
    found: dict[str, dict[str, Path]] = {}
    for path in folder.rglob("*.nii*"):
        match = pattern.match(path.name)
        if match and path.is_file():
            found.setdefault(match.group(2), {})[match.group(1)] = path
    return [
        TrainingPair(f"lits-{n}", paths["volume"], paths["segmentation"], "lits")
        for n, paths in found.items()
        if "volume" in paths and "segmentation" in paths
    ]


def _is_ircadb_patient(folder: Path) -> bool:
    return (folder / "PATIENT_DICOM").is_dir() and (folder / "MASKS_DICOM").is_dir()


def _ircadb_pairs(folder: Path) -> list[TrainingPair]:
    patients = [folder] if _is_ircadb_patient(folder) else [
        p for p in folder.iterdir() if p.is_dir() and _is_ircadb_patient(p)
    ]
    return [TrainingPair(p.name, p / "PATIENT_DICOM", p, "ircadb") for p in patients]


def _generic_pairs(folder: Path) -> list[TrainingPair]:
    pairs = []
    label_dirs = [folder / d for d in LABEL_FOLDERS if (folder / d).is_dir()]
    volumes = [p for p in folder.iterdir() if _is_volume(p)]
    as_label = set()
    for image in volumes:  # <name>_label.nii.gz beside <name>.nii.gz
        stem, suffix = _stem(image), image.name[len(_stem(image)):]
        for tag in LABEL_SUFFIXES:
            label = folder / f"{stem}{tag}{suffix}"
            if label.is_file():
                pairs.append(TrainingPair(stem, image, label, "nifti"))
                as_label.add(label)
                break
    paired = {p.image_path for p in pairs}
    for image in volumes:  # labels/<same name>
        if image in paired or image in as_label:
            continue
        for label_dir in label_dirs:
            if (label_dir / image.name).is_file():
                pairs.append(TrainingPair(_stem(image), image, label_dir / image.name, "nifti"))
                break
    return pairs


# --- the labelled volumes of ../shared/data --------------------------------------------------------

def shared_training_volumes(shared_data_dir, neighbours: bool = False) -> list[tuple]:
    """(name, CT, label 0/1/2 on the CT grid) for each labelled volume present in ../shared/data.

    ``ircadb-17`` (expert liver + tumours), ``lits-117`` (LiTS liver crop, expert liver + tumours),
    ``totalseg-sm`` and ``totalseg-dicom`` (TotalSegmentator's test CTs; liver = its label 5, no
    tumour class, and these labels are model predictions, not expert masks). Missing ones are skipped.
    ``neighbours``: a fourth item, the 0/1 mask of the organs of :data:`TOTALSEG_NEIGHBOURS` on the CT
    grid (None for the volumes that label only liver and tumour).
    """
    root = Path(shared_data_dir)
    volumes = []
    if (root / "ircadb-17").is_dir():
        volumes.append(("ircadb-17", *load_pair(_ircadb_pairs(root / "ircadb-17")[0]), None))
    if (root / "lits-117" / "img_117.mrc").is_file():
        volumes.append(("lits-117", *read_lits117(root / "lits-117"), None))
    totalseg = root / "totalseg-example"
    # example_seg shares example_ct_sm's grid exactly (both carry example_ct's origin, see README);
    # example_seg_dicom's y axis is flipped relative to the DICOM: resampling in physical space fixes it
    for name, ct, seg in (("totalseg-sm", totalseg / "example_ct_sm.nii.gz", totalseg / "example_seg.nii.gz"),
                          ("totalseg-dicom", totalseg / "example_ct_dicom", totalseg / "example_seg_dicom.nii.gz")):
        if ct.exists():
            image = read_image(ct)
            volumes.append((name, image, _totalseg_liver(seg, image), _totalseg_neighbours(seg, image)))
    return volumes if neighbours else [volume[:3] for volume in volumes]


def liver_free_pelvis(shared_data_dir) -> sitk.Image:
    """Slices :data:`PELVIS_SLICES` of totalseg-example/example_ct.nii.gz: real CT without liver."""
    return read_image(Path(shared_data_dir) / "totalseg-example" / "example_ct.nii.gz")[:, :, slice(*PELVIS_SLICES)]


def _totalseg_liver(path: Path, image: sitk.Image) -> sitk.Image:
    """TotalSegmentator multi-label map → liver (label 5) = 1, everything else 0, on ``image``'s grid."""
    seg = sitk.ReadImage(str(path))
    liver = sitk.Cast(seg == TOTALSEG_LIVER, sitk.sitkUInt8)
    return check_label(liver, reference=image, name=path.name)


def _totalseg_neighbours(path: Path, image: sitk.Image) -> sitk.Image:
    """The organs of :data:`TOTALSEG_NEIGHBOURS` in a TotalSegmentator map as a 0/1 mask on ``image``'s grid."""
    seg = sitk.ReadImage(str(path))
    mask = sitk.GetImageFromArray(np.isin(sitk.GetArrayViewFromImage(seg), TOTALSEG_NEIGHBOURS).astype(np.uint8))
    mask.CopyInformation(seg)
    return check_label(mask, reference=image, name=path.name)


def read_lits117(folder) -> tuple[sitk.Image, sitk.Image]:
    """The 128³ MRC crop of LiTS volume 117 as an LPS image (spacing :data:`LITS117_SPACING_MM`).

    The MRC arrays are stored (x, y, z), as nibabel reads a NIfTI, with x towards the patient's left,
    y posterior and z superior (checked by eye: liver on the right, spine posterior, liver dome and
    then the kidney going down). SimpleITK wants (z, y, x), hence the transpose; no flip is needed.
    """
    import mrcfile  # only this one volume needs it

    folder = Path(folder)
    with mrcfile.open(folder / "img_117.mrc", permissive=True) as mrc:
        values = np.ascontiguousarray(np.asarray(mrc.data, dtype=np.float32).transpose(2, 1, 0))
    with mrcfile.open(folder / "lab_117.mrc", permissive=True) as mrc:
        labels = np.ascontiguousarray(np.asarray(mrc.data, dtype=np.uint8).transpose(2, 1, 0))
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(LITS117_SPACING_MM)
    check_ct(image, name="img_117.mrc")
    label = sitk.GetImageFromArray(labels)
    label.CopyInformation(image)
    return image, check_label(label, reference=image, name="lab_117.mrc")
