"""First-use installation of DELICAITE's Python dependencies into Slicer's Python, after asking.

Shipped with the hub module; the DELICAITE, DELICAITESegment and DELICAITERecommend modules all call
`ensureDependencies()` before they import DELICAITELib (module folders share Slicer's Python path).
Torch comes through the SlicerPyTorch extension's PyTorchUtils when it is installed (it picks the CUDA
build that fits the machine), else from pip. Packages Slicer already has (numpy, SimpleITK, ...) are
kept at Slicer's versions: they are passed to pip as constraints, never upgraded.
"""

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import tempfile

# The same pins as pyproject.toml's dependencies (Testing/test_slicer_modules_static.py checks it).
PINNED_REQUIREMENTS = (
    "numpy==2.4.6",
    "scipy==1.17.1",
    "pandas==2.3.3",
    "SimpleITK==2.5.7",
    "pydicom==3.0.2",
    "torch==2.13.0",
    "monai==1.6.1",
    "pyradiomics-bhklab==3.1.4",
    "PyWavelets==1.9.0",
    "scikit-learn==1.9.1",
    "statsmodels==0.15.0",
    "lifelines==0.30.3",
    "matplotlib==3.11.2",
    "PyYAML==6.0.4",
    "openpyxl==3.1.5",
    "mrcfile==1.5.4",
    "tqdm==4.70.1",
    "filelock==4.3.2",
)
# Distribution name -> the module it installs, where they differ.
IMPORT_NAMES = {"pyradiomics-bhklab": "radiomics", "PyWavelets": "pywt", "scikit-learn": "sklearn", "PyYAML": "yaml"}
# PyTorchUtils may choose another build (CUDA) than the pin; any torch 2 runs the library.
TORCH_REQUIREMENT = ">=2.2"


def distributionName(requirement):
    return re.split(r"[=<>!~\[ ;]", requirement, maxsplit=1)[0]


def importName(requirement):
    name = distributionName(requirement)
    return IMPORT_NAMES.get(name, name)


def missingRequirements():
    """The pinned requirements whose module cannot be imported in this Python."""
    return [r for r in PINNED_REQUIREMENTS if importlib.util.find_spec(importName(r)) is None]


def _constraintsFile(present):
    """A pip constraints file holding the installed version of every package already present."""
    lines = []
    for requirement in present:
        try:
            lines.append(f"{distributionName(requirement)}=={importlib.metadata.version(distributionName(requirement))}")
        except importlib.metadata.PackageNotFoundError:
            continue  # importable but not pip-installed (shipped inside Slicer): pip leaves it alone
    handle, path = tempfile.mkstemp(prefix="delicaite-constraints-", suffix=".txt")
    with os.fdopen(handle, "w") as stream:
        stream.write("\n".join(lines) + "\n")
    return path


def _installTorch():
    import slicer

    try:
        import PyTorchUtils  # the SlicerPyTorch extension
    except ImportError:
        slicer.util.pip_install(next(r for r in PINNED_REQUIREMENTS if distributionName(r) == "torch"))
        return
    if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False,
                                                     torchVersionRequirement=TORCH_REQUIREMENT) is None:
        raise RuntimeError("PyTorch could not be installed by the PyTorch Utils module")


def ensureDependencies(parentWidget=None):
    """True when every dependency imports, installing the missing ones after the user agrees.

    Returns False when the user declines. Raises RuntimeError when something is still missing after
    installing. In testing mode (self-tests) it installs without asking, since nobody could answer.
    """
    missing = missingRequirements()
    if not missing:
        return True
    import slicer

    names = ", ".join(distributionName(r) for r in missing)
    if not slicer.app.testingEnabled() and not slicer.util.confirmOkCancelDisplay(
            "DELICAITE needs Python packages that are not installed in Slicer's Python yet:\n\n"
            f"{names}\n\nInstall them now? This downloads them from the internet (PyTorch alone is "
            "several hundred MB) and takes a few minutes.", "DELICAITE: install dependencies",
            parent=parentWidget):
        return False
    present = [r for r in PINNED_REQUIREMENTS if r not in missing]
    constraints = _constraintsFile(present)
    try:
        with slicer.util.WaitCursor():
            if any(distributionName(r) == "torch" for r in missing):
                slicer.util.showStatusMessage("Installing PyTorch...")
                _installTorch()  # before monai, so monai does not bring in a default torch build
            for requirement in missing:
                if distributionName(requirement) == "torch":
                    continue
                slicer.util.showStatusMessage(f"Installing {distributionName(requirement)}...")
                slicer.util.pip_install([requirement, "-c", constraints])
    finally:
        os.remove(constraints)
    importlib.invalidate_caches()
    still = missingRequirements()
    if still:
        raise RuntimeError("could not install " + ", ".join(distributionName(r) for r in still)
                           + "; see the Python console for pip's messages")
    logging.info("DELICAITE dependencies installed: %s", names)
    return True
