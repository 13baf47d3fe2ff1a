"""Shared fixtures: the real data in ../shared/data (read in place, never copied) and small caches."""

from pathlib import Path

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
