"""Shared fixtures: the real data in ../shared/data (read in place, never copied) and small caches."""

import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with a message saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (tests with real CT need ../shared/data beside the project)")
    return path


@pytest.fixture(scope="session")
def ircadb17_dir() -> Path:
    return shared_path("ircadb-17")


@pytest.fixture(scope="session")
def hcc009_dir() -> Path:
    return shared_path("hcc-tace-seg", "HCC_009")


@pytest.fixture(scope="session")
def hcc_clinical_csv() -> Path:
    return shared_path("hcc-tace-seg", "clinical_data.csv")


@pytest.fixture(scope="session")
def ircadb17_image(ircadb17_dir):
    """3D-IRCADb-01 patient 17 CT (float32 HU), read once per test session."""
    from DELICAITELib.io import read_image

    return read_image(ircadb17_dir / "PATIENT_DICOM")


@pytest.fixture(scope="session")
def ircadb17_label(ircadb17_dir, ircadb17_image):
    """Its label map (liver 1, livertumor1 ∪ livertumor2 = 2) on the CT grid, read once per session."""
    from DELICAITELib.io import read_label

    return read_label(ircadb17_dir, reference=ircadb17_image)


def _independent_tumour_areas(ircadb17_dir):
    """Tumour area per CT slice index counted with pydicom only: 255-pixels of livertumor1 ∪ livertumor2."""
    ct_folder = ircadb17_dir / "PATIENT_DICOM"
    headers = (pydicom.dcmread(ct_folder / n, stop_before_pixels=True) for n in os.listdir(ct_folder))
    ct_z = sorted(float(h.ImagePositionPatient[2]) for h in headers)
    union = defaultdict(lambda: None)
    pixel_area = {}
    for tumour in ("livertumor1", "livertumor2"):
        folder = ircadb17_dir / "MASKS_DICOM" / tumour
        for name in os.listdir(folder):
            ds = pydicom.dcmread(folder / name)
            z = round(float(ds.ImagePositionPatient[2]), 3)
            inside = ds.pixel_array == 255
            union[z] = inside if union[z] is None else union[z] | inside
            pixel_area[z] = float(ds.PixelSpacing[0]) * float(ds.PixelSpacing[1])
    areas = {}
    for z, inside in union.items():
        index = int(np.argmin(np.abs(np.array(ct_z) - z)))
        assert abs(ct_z[index] - z) < 1e-3  # each mask slice sits on a CT slice
        areas[index] = np.count_nonzero(inside) * pixel_area[z]
    return areas


@pytest.fixture(scope="session")
def ircadb17_independent_largest(ircadb17_dir):
    """The three (area mm², CT slice index) with the largest tumour area, largest first, from pydicom alone."""
    areas = _independent_tumour_areas(ircadb17_dir)
    return sorted(((a, i) for i, a in areas.items() if a > 0), key=lambda t: (-t[0], t[1]))[:3]


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: on two shared cores a second one spins waiting (the CNN tests took
    31 s with one thread against 172 s with two). Use with pytestmark = pytest.mark.usefixtures(...)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def app(monkeypatch):
    """A real MRML scene (slicer-core) as slicer.mrmlScene and stand-ins for what only the Slicer
    application has, so a module's Logic runs (slicer_stubs.py); skipped without slicer-core."""
    from slicer_stubs import install_stand_ins

    return install_stand_ins(monkeypatch)


@pytest.fixture()
def demo_case(app, tmp_path):
    """The demo case (synthetic two-phase CT and its segmentation) as nodes of the app's scene: ap, vp,
    segmentation, label (SimpleITK), paths (the files) and tumour (R, A, S of the tumour's centre)."""
    import types

    import numpy as np
    import SimpleITK as sitk
    from DELICAITELib import mrml
    from DELICAITELib.demo import write_demo_inputs
    from DELICAITELib.io import read_image, read_label
    from DELICAITELib.mrml.volumes import ijk_to_ras

    paths = write_demo_inputs(tmp_path / "demo_case")
    ap_image = read_image(paths["ap"])
    ap = mrml.volume_node_from_image(app.scene, ap_image, "phantom AP")
    vp = mrml.volume_node_from_image(app.scene, read_image(paths["vp"]), "phantom VP")
    label = read_label(paths["mask"], reference=ap_image)
    segmentation = mrml.segmentation_node_from_label(app.scene, label, ap, "phantom segmentation")
    tumour = np.argwhere(sitk.GetArrayViewFromImage(label) == 2).mean(axis=0)[::-1]  # (i, j, k)
    return types.SimpleNamespace(ap=ap, vp=vp, segmentation=segmentation, label=label, paths=paths,
                                 tumour=ijk_to_ras(ap, tumour))
