"""DELICAITE's Python packages in Slicer's Python: what each module needs, what is missing, installing it
when the user presses *Install dependencies*, and saying plainly why an installation failed.

Each module lists what it needs in ``Resources/Requirements/<Module>.txt`` (Segment only what segmentation
needs). Lines marked ``# slicer`` are packages Slicer ships: ranges that admit Slicer's version, and pip is
given the installed versions as constraints, so they never change. Torch (``# torch``) comes through the
SlicerPyTorch extension when it is installed (it chooses the CPU or CUDA build); otherwise pip installs
its default build, which on Linux is the CUDA one (about 3 GB). Everything installs from wheels: nothing
here needs a compiler (Testing/check_wheels.py checks the files for every platform).
"""

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile

HUB_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Distribution name -> the module it installs, where they differ.
IMPORT_NAMES = {"PyWavelets": "pywt", "scikit-learn": "sklearn", "PyYAML": "yaml"}
# Rough download sizes in MB (wheels with what they bring), to say what pressing the button costs.
DOWNLOAD_MB = {"monai": 3, "pandas": 12, "scikit-learn": 11, "statsmodels": 10, "lifelines": 1, "matplotlib": 9,
               "mirp": 95, "PyWavelets": 5, "openpyxl": 1, "mrcfile": 1}
TORCH_MB = {"Linux": 3000, "Windows": 250, "Darwin": 80}


class DependencyInstallError(RuntimeError):
    """pip failed: ``str(error)`` says what to do, ``output`` is pip's own text."""

    def __init__(self, advice, output=""):
        super().__init__(advice)
        self.output = output


def requirementsFile(moduleName):
    """The module's requirement file: in an installed extension every module's resources share one folder;
    in this source tree each module folder has its own."""
    for folder in (os.path.join(HUB_FOLDER, "Resources", "Requirements"),
                   os.path.join(os.path.dirname(HUB_FOLDER), moduleName, "Resources", "Requirements")):
        path = os.path.join(folder, moduleName + ".txt")
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"no requirement file for {moduleName} (Resources/Requirements/{moduleName}.txt)")


def readRequirements(path):
    """[(requirement, mark)] of a requirement file; mark is "slicer", "torch" or ""."""
    entries = []
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            requirement, _, comment = line.partition("#")
            if requirement.strip():
                entries.append((requirement.strip(), comment.strip()))
    return entries


def distributionName(requirement):
    return re.split(r"[=<>!~\[ ;]", requirement, maxsplit=1)[0]


def importName(requirement):
    name = distributionName(requirement)
    return IMPORT_NAMES.get(name, name)


def missingRequirements(moduleName):
    """The module's requirements whose package cannot be imported in this Python."""
    return [requirement for requirement, _mark in readRequirements(requirementsFile(moduleName))
            if importlib.util.find_spec(importName(requirement)) is None]


def downloadEstimateMB(missing, system=None):
    system = system or platform.system()
    return sum(TORCH_MB.get(system, 250) if distributionName(r) == "torch" else DOWNLOAD_MB.get(distributionName(r), 2)
               for r in missing)


def statusLine(moduleName):
    """(ready, one line for the module's status label)."""
    missing = missingRequirements(moduleName)
    if not missing:
        return True, "Python packages: all installed."
    names = ", ".join(distributionName(r) for r in missing)
    torch = any(distributionName(r) == "torch" for r in missing)
    note = (" PyTorch comes through the PyTorch extension when it is installed (CPU or CUDA, its choice); "
            "otherwise pip's default build, on Linux the CUDA one." if torch else "")
    return False, (f"Python packages missing: {names} (about {downloadEstimateMB(missing)} MB to download). "
                   f"Press Install dependencies.{note}")


def adviceFor(output):
    """What to do about a failed pip run, from its output."""
    text = output.lower()
    if any(word in text for word in ("proxyerror", "proxy")):
        return ("pip could not get through the proxy. Set HTTPS_PROXY (and HTTP_PROXY) for Slicer, as your IT "
                "department gives it, restart Slicer and press Install dependencies again.")
    if any(word in text for word in ("failed to establish a new connection", "temporary failure in name resolution",
                                     "network is unreachable", "connection refused", "read timed out",
                                     "could not fetch url", "max retries exceeded", "nodename nor servname")):
        return ("pip could not reach the package index: this computer looks offline. Connect it, or on a "
                "connected computer download the wheels (pip download -r the module's requirement file "
                "--only-binary=:all:) and install them from that folder (pip install --no-index --find-links).")
    if "no matching distribution" in text or "could not find a version" in text:
        return ("pip found no wheel of a required package for this platform and Python. Which package is named "
                "in pip's output below; please report it with your operating system and Slicer version.")
    if "error: microsoft visual c++" in text or "python.h" in text or "building wheel" in text:
        return "pip tried to compile a package, which Slicer cannot do; please report this with pip's output below."
    return "pip failed; its output is below."


def _pythonExecutable():
    """PythonSlicer (Slicer's own Python with its environment) next to the application, else this Python."""
    folder = os.path.dirname(sys.executable)
    for name in ("PythonSlicer.exe", "PythonSlicer"):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    return sys.executable


def runPip(arguments):
    """Run pip in a child process with no console window (Windows); DependencyInstallError on failure."""
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    done = subprocess.run([_pythonExecutable(), "-m", "pip", "install", "--disable-pip-version-check",
                           "--only-binary=:all:", *arguments], capture_output=True, text=True, creationflags=flags)
    output = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0:
        raise DependencyInstallError(adviceFor(output), output)
    return output


def _constraintsFile(entries):
    """A pip constraints file holding the installed version of every package Slicer ships."""
    lines = []
    for requirement, mark in entries:
        if mark == "slicer":
            try:
                lines.append(f"{distributionName(requirement)}=={importlib.metadata.version(distributionName(requirement))}")
            except importlib.metadata.PackageNotFoundError:
                continue  # importable but not pip-installed (built into Slicer): pip leaves it alone
    handle, path = tempfile.mkstemp(prefix="delicaite-constraints-", suffix=".txt")
    with os.fdopen(handle, "w") as stream:
        stream.write("\n".join(lines) + "\n")
    return path


def _installTorch(requirement):
    try:
        import PyTorchUtils  # the SlicerPyTorch extension
    except ImportError:
        return runPip([requirement])
    floor = requirement[len(distributionName(requirement)):].strip()
    if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=floor) is None:
        raise DependencyInstallError("The PyTorch Utils module could not install PyTorch; see its messages.")
    return ""


def installDependencies(moduleName, say=logging.info):
    """Install what the module lacks (torch first, so MONAI does not pull its own build); returns pip's output.
    Raises DependencyInstallError (advice and pip's output) when something fails or is still missing."""
    entries = readRequirements(requirementsFile(moduleName))
    missing = set(missingRequirements(moduleName))
    constraints = _constraintsFile(entries)
    output = []
    try:
        for requirement, mark in sorted(entries, key=lambda entry: entry[1] != "torch"):
            if requirement not in missing:
                continue
            say(f"Installing {distributionName(requirement)}...")
            output.append(_installTorch(requirement) if mark == "torch" else runPip([requirement, "-c", constraints]))
    finally:
        os.remove(constraints)
    importlib.invalidate_caches()
    still = missingRequirements(moduleName)
    if still:
        raise DependencyInstallError("Still missing after installing: " + ", ".join(distributionName(r) for r in still),
                                     "\n".join(output))
    return "\n".join(output)


def ensureDependencies(moduleName, parentWidget=None):
    """True when the module's packages import. In testing mode (self-tests) the missing ones are installed;
    otherwise the user is told to press Install dependencies (nothing is installed without being asked)."""
    if not missingRequirements(moduleName):
        return True
    import slicer

    if slicer.app.testingEnabled():
        installDependencies(moduleName)
        return True
    slicer.util.warningDisplay(statusLine(moduleName)[1], "DELICAITE: Python packages missing", parent=parentWidget)
    return False
