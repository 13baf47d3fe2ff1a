"""What each module installs into Slicer's Python (DELICAITE/DELICAITECommon/dependencies.py and the
requirement files under the module folders), run here without Slicer: the files agree with each other and
with pyproject.toml, Slicer's own packages are ranges that admit its versions, Segment's file is enough
for segmentation (the segment command runs with every other package made unimportable), pip's failures
become advice, and nothing is installed that the file does not name, torch first.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "DELICAITE"))
from DELICAITECommon import dependencies  # noqa: E402  (plain Python: imports nothing from Slicer)

MODULES = ("DELICAITESegment", "DELICAITERecommend", "DELICAITE")
SLICER_510 = {"numpy": "2.0.2", "scipy": "1.13.1", "SimpleITK": "2.5.2", "pydicom": "2.4.4"}


def requirements(module):
    return {dependencies.distributionName(r): (Requirement(r), mark)
            for r, mark in dependencies.readRequirements(dependencies.requirementsFile(module))}


def test_each_module_file_holds_the_one_before_it_with_the_same_versions():
    segment, recommend, hub = (requirements(m) for m in MODULES)
    assert set(segment) < set(recommend) < set(hub)
    for name, (requirement, mark) in recommend.items():
        assert str(hub[name][0]) == str(requirement) and hub[name][1] == mark
    for name, (requirement, mark) in segment.items():
        assert str(recommend[name][0]) == str(requirement) and recommend[name][1] == mark
    # Segment is what segmentation needs: no model, statistics or radiomics packages
    assert not {"pandas", "scikit-learn", "statsmodels", "lifelines", "mirp", "PyWavelets"} & set(segment)


def test_the_hub_file_agrees_with_pyproject_and_admits_slicers_own_versions():
    project = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    hub = requirements("DELICAITE")
    for requirement in project:
        if requirement.name == "pyradiomics-bhklab":
            assert requirement.name not in hub  # source only: Slicer gets pyradiomics from SlicerRadiomics, or mirp
            continue
        theirs, mark = hub[requirement.name]
        if requirement.name == "torch":  # the CLI's pin; Slicer keeps whatever build satisfies the floor
            assert mark == "torch" and theirs.specifier.contains(next(iter(requirement.specifier)).version)
            assert theirs.specifier.contains("2.8.0") and not theirs.specifier.contains("2.7.1")  # MONAI 1.6.1's
            continue
        assert str(theirs.specifier) == str(requirement.specifier), requirement.name
    for name, version in SLICER_510.items():
        requirement, mark = hub[name]
        assert mark == "slicer" and requirement.specifier.contains(version), name
    constraints = (ROOT / "DELICAITE/Resources/Requirements/Slicer-5.10-constraints.txt").read_text()
    assert {Requirement(line).name: str(Requirement(line).specifier)[2:] for line in constraints.splitlines()
            if line.strip() and not line.startswith("#")} == SLICER_510


def test_every_requirement_file_is_a_resource_of_its_module():
    for module in MODULES:
        cmake = (ROOT / module / "CMakeLists.txt").read_text()
        assert "Resources/Requirements/${MODULE_NAME}.txt" in cmake, module
        assert (ROOT / module / "Resources/Requirements" / f"{module}.txt").is_file()


def test_an_installed_extension_finds_the_files_in_its_shared_resources_folder(tmp_path, monkeypatch):
    """Installed, every module's resources land in one Resources/ beside the module files."""
    shared = tmp_path / "qt-scripted-modules" / "Resources" / "Requirements"
    shared.mkdir(parents=True)
    for module in MODULES:
        shutil.copy(dependencies.requirementsFile(module), shared)
    monkeypatch.setattr(dependencies, "HUB_FOLDER", str(tmp_path / "qt-scripted-modules"))
    assert dependencies.requirementsFile("DELICAITESegment") == str(shared / "DELICAITESegment.txt")
    with pytest.raises(FileNotFoundError, match="DELICAITENothing"):
        dependencies.requirementsFile("DELICAITENothing")


@pytest.mark.parametrize("output, advice", [
    ("WARNING: Retrying ... Failed to establish a new connection: [Errno 101] Network is unreachable", "offline"),
    ("ProxyError('Cannot connect to proxy.')", "HTTPS_PROXY"),
    ("ERROR: Could not find a version that satisfies the requirement mirp==2.5.0 (from versions: none)\n"
     "ERROR: No matching distribution found for mirp==2.5.0", "no wheel"),
    ("error: Microsoft Visual C++ 14.0 or greater is required", "compile"),
    ("ERROR: something else", "its output is below"),
])
def test_pip_failures_become_advice(output, advice):
    assert advice in dependencies.adviceFor(output)


def test_the_status_line_names_what_is_missing_and_what_it_costs(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("torch", "monai") else real(name, *a))
    ready, line = dependencies.statusLine("DELICAITESegment")
    assert not ready and "torch, monai" in line and "Install dependencies" in line and "CUDA" in line
    assert dependencies.downloadEstimateMB(["torch>=2.8"], "Linux") > 10 * dependencies.downloadEstimateMB(
        ["torch>=2.8"], "Darwin")
    monkeypatch.setattr(importlib.util, "find_spec", real)
    assert dependencies.statusLine("DELICAITESegment") == (True, "Python packages: all installed.")


def test_install_runs_pip_for_the_missing_only_torch_first_slicers_versions_held(monkeypatch):
    missing = {"monai", "torch", "tqdm"}
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))
    calls = []

    def fake_pip(arguments):
        constraints = Path(arguments[2]).read_text() if "-c" in arguments else ""
        calls.append((arguments[0], constraints))
        missing.discard(dependencies.importName(arguments[0]))
        return "ok"

    monkeypatch.setattr(dependencies, "runPip", fake_pip)
    dependencies.installDependencies("DELICAITESegment", say=lambda text: None)
    assert [c[0] for c in calls] == ["torch>=2.8", "monai==1.6.1", "tqdm==4.70.1"]
    import numpy
    assert f"numpy=={numpy.__version__}" in calls[1][1]  # what is installed stays as it is

    missing.add("monai")
    monkeypatch.setattr(dependencies, "runPip", lambda arguments: "pip said nothing useful")
    with pytest.raises(dependencies.DependencyInstallError, match="Still missing after installing: monai") as caught:
        dependencies.installDependencies("DELICAITESegment", say=lambda text: None)
    assert "pip said nothing useful" in caught.value.output


def test_a_failed_pip_run_carries_its_output(monkeypatch):
    monkeypatch.setattr(dependencies, "_pythonExecutable", lambda: sys.executable)
    with pytest.raises(dependencies.DependencyInstallError, match="no wheel") as caught:
        dependencies.runPip(["--no-index", "--find-links", os.devnull, "no-such-package-delicaite==1.0"])
    assert "no-such-package-delicaite" in caught.value.output


BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = set(sys.argv.pop(1).split(","))
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not in DELICAITESegment's requirement file")
    sys.meta_path.insert(0, Blocker())
    from DELICAITELib.cli import main
    sys.exit(main())
""")


@pytest.mark.slow
def test_segmentation_runs_with_only_the_segment_modules_packages(tmp_path):
    """The Segment module's job (`delicaite segment`, with --preview) on the synthetic CT, in a Python where
    every package of the other modules' files, and pyradiomics, fails to import."""
    from DELICAITELib.demo import write_demo_inputs

    segment = set(requirements("DELICAITESegment"))
    others = {dependencies.importName(name) for name in set(requirements("DELICAITE")) - segment} | {"radiomics"}
    assert {"pandas", "sklearn", "mirp", "pywt"} <= others
    ct = write_demo_inputs(tmp_path)["ap"]
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKER)
    done = subprocess.run([sys.executable, str(script), ",".join(sorted(others)), "segment", str(ct), "--out",
                           str(tmp_path / "seg.nii.gz"), "--backend", "delicaite", "--preview", str(tmp_path / "p.png")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "seg.nii.gz").is_file() and (tmp_path / "p.png").is_file()
