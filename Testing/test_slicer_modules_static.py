"""Static checks of the Slicer modules, which cannot run here (no Slicer application).

For each scripted module folder (a folder whose CMakeLists.txt calls slicerMacroBuildScriptedModule):
every ``self.ui.<name>`` its Python files use is an object in its .ui files; its CMakeLists lists files
that exist (the module .py, UI, icon, helper scripts) and uses WITH_GENERIC_TESTS; the top-level
CMakeLists adds it; the module .py has the Module/Widget/Logic/Test classes and a runTest that calls a
test_ method; every .py compiles. The checkers are also run on small broken fixtures, so a missing
name is shown to fail.
"""

from __future__ import annotations

import ast
import py_compile
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXPECTED_MODULES = ("DELICAITE", "DELICAITESegment", "DELICAITERecommend")
ICON_SIZE = (128, 128)
UI_FILE_IN_CODE = re.compile(r"""["'](?:[\w/.-]*/)?UI/([\w.-]+\.ui)["']""")


# ---------------------------------------------------------------- checkers (also run on fixtures)

def module_folders(root: Path) -> list[Path]:
    """Folders under ``root`` whose CMakeLists.txt builds a scripted module."""
    return sorted(p.parent for p in root.glob("*/CMakeLists.txt")
                  if "slicerMacroBuildScriptedModule" in p.read_text(encoding="utf-8"))


def ui_object_names(ui_path: Path) -> set[str]:
    """Names of every widget, layout and action in a Qt Designer file (what childWidgetVariables finds)."""
    root = ET.parse(ui_path).getroot()
    return {node.get("name") for tag in ("widget", "layout", "action") for node in root.iter(tag) if node.get("name")}


def ui_attributes_used(py_path: Path) -> set[str]:
    """Every ``X`` in ``self.ui.X`` in a Python file."""
    names = set()
    for node in ast.walk(ast.parse(py_path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"):
            names.add(node.attr)
    return names


def missing_ui_names(module_dir: Path) -> dict[str, set[str]]:
    """Per Python file of the module folder: the ``self.ui`` names absent from the .ui files it loads.

    A file that names its .ui (``resourcePath("UI/X.ui")``) is checked against those; a helper file
    that loads none is checked against all of the module's .ui files.
    """
    ui_dir = module_dir / "Resources" / "UI"
    all_ui = sorted(ui_dir.glob("*.ui"))
    missing = {}
    for py_path in sorted(module_dir.glob("*.py")):
        used = ui_attributes_used(py_path)
        if not used:
            continue
        loaded = [ui_dir / name for name in UI_FILE_IN_CODE.findall(py_path.read_text(encoding="utf-8"))]
        absent_files = [p.name for p in loaded if not p.is_file()]
        if absent_files:
            missing[py_path.name] = {f"<missing UI file {name}>" for name in absent_files}
            continue
        names = set().union(*(ui_object_names(p) for p in (loaded or all_ui)))
        if used - names:
            missing[py_path.name] = used - names
    return missing


def _strip_comments(cmake: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in cmake.splitlines())


def cmake_set_values(cmake: str, variable: str, module_name: str) -> list[str]:
    """The entries of ``set(<variable> ...)``, with ${MODULE_NAME} substituted."""
    match = re.search(rf"set\(\s*{variable}\s+([^)]*)\)", _strip_comments(cmake))
    if not match:
        return []
    return [v.replace("${MODULE_NAME}", module_name) for v in match.group(1).split()]


def cmake_problems(module_dir: Path, top_level_cmake: Path) -> list[str]:
    """What is wrong with a module folder's CMake files and their listed files (empty when all is well)."""
    name = module_dir.name
    cmake = _strip_comments((module_dir / "CMakeLists.txt").read_text(encoding="utf-8"))
    problems = []
    if not re.search(rf"set\(\s*MODULE_NAME\s+{name}\s*\)", cmake):
        problems.append(f"MODULE_NAME is not {name}")
    if "WITH_GENERIC_TESTS" not in cmake:
        problems.append("slicerMacroBuildScriptedModule without WITH_GENERIC_TESTS")
    scripts = cmake_set_values(cmake, "MODULE_PYTHON_SCRIPTS", name)
    resources = cmake_set_values(cmake, "MODULE_PYTHON_RESOURCES", name)
    for listed in scripts + resources:
        if "${" not in listed and not (module_dir / listed).is_file():  # ${...}: a glob result
            problems.append(f"lists {listed}, which does not exist")
    if f"{name}.py" not in scripts:
        problems.append(f"{name}.py is not in MODULE_PYTHON_SCRIPTS")
    # Slicer's module factory takes every .py beside the module file for a module of its own and logs
    # "class … was not found" for each at start-up: helpers belong in a package folder
    problems += [f"{p.name} sits beside {name}.py (Slicer would load it as a module): move it into a package folder"
                 for p in sorted(module_dir.glob("*.py")) if p.name != f"{name}.py"]
    packaged = [str(p.relative_to(module_dir).as_posix()) for p in sorted(module_dir.glob("*/*.py"))
                if p.parent.name not in ("Testing", "Resources", "DELICAITELib")]
    problems += [f"{script} is not in MODULE_PYTHON_SCRIPTS" for script in packaged if script not in scripts]
    for resource in [f"Resources/Icons/{name}.png"] + [
            f"Resources/UI/{p.name}" for p in sorted((module_dir / "Resources" / "UI").glob("*.ui"))]:
        if not (module_dir / resource).is_file():
            problems.append(f"{resource} does not exist")
        elif resource not in resources:
            problems.append(f"{resource} is not in MODULE_PYTHON_RESOURCES")
    if not (module_dir / "Testing" / "Python" / "CMakeLists.txt").is_file():
        problems.append("Testing/Python/CMakeLists.txt does not exist")
    elif "add_subdirectory(Testing)" not in cmake.replace(" ", ""):
        problems.append("the Testing folder is not added (add_subdirectory(Testing) under BUILD_TESTING)")
    top = _strip_comments(top_level_cmake.read_text(encoding="utf-8"))
    if not re.search(rf"add_subdirectory\(\s*{name}\s*\)", top):
        problems.append(f"the top-level CMakeLists.txt does not add_subdirectory({name})")
    return problems


def class_problems(module_py: Path) -> list[str]:
    """Missing Module/Widget/Logic/Test classes, or a Test.runTest that calls no test_ method it defines."""
    name = module_py.stem
    classes = {node.name: node for node in ast.parse(module_py.read_text(encoding="utf-8")).body
               if isinstance(node, ast.ClassDef)}
    problems = [f"no class {name}{suffix}" for suffix in ("", "Widget", "Logic", "Test") if name + suffix not in classes]
    test_class = classes.get(f"{name}Test")
    if test_class is None:
        return problems
    methods = {node.name: node for node in test_class.body if isinstance(node, ast.FunctionDef)}
    if "runTest" not in methods:
        return problems + [f"{name}Test has no runTest"]
    # self.test_x() or a list of self.test_x run in a loop (as Slicer's own SampleData test does)
    called = {node.attr for node in ast.walk(methods["runTest"])
              if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
              and node.attr.startswith("test_")}
    if not called:
        problems.append(f"{name}Test.runTest calls no self.test_... method")
    problems += [f"{name}Test.runTest calls {m}, which {name}Test does not define" for m in called - set(methods)]
    return problems


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", header[16:24])


# ---------------------------------------------------------------- the real modules

MODULES = module_folders(PROJECT_ROOT)


def test_the_three_modules_are_there():
    assert [p.name for p in MODULES] == sorted(EXPECTED_MODULES)


@pytest.mark.parametrize("module_dir", MODULES, ids=lambda p: p.name)
def test_every_ui_name_the_module_uses_exists_in_its_ui(module_dir):
    assert (module_dir / "Resources" / "UI" / f"{module_dir.name}.ui").is_file()
    assert ui_attributes_used(module_dir / f"{module_dir.name}.py"), "the widget binds no self.ui names"
    assert missing_ui_names(module_dir) == {}


@pytest.mark.parametrize("module_dir", MODULES, ids=lambda p: p.name)
def test_cmake_lists_existing_files_and_generic_tests(module_dir):
    assert cmake_problems(module_dir, PROJECT_ROOT / "CMakeLists.txt") == []
    assert png_size(module_dir / "Resources" / "Icons" / f"{module_dir.name}.png") == ICON_SIZE


@pytest.mark.parametrize("module_dir", MODULES, ids=lambda p: p.name)
def test_module_classes_and_self_test(module_dir):
    assert class_problems(module_dir / f"{module_dir.name}.py") == []


@pytest.mark.parametrize("module_dir", MODULES, ids=lambda p: p.name)
def test_module_python_compiles(module_dir, tmp_path):
    for py_path in sorted(module_dir.glob("*.py")):
        py_compile.compile(str(py_path), cfile=str(tmp_path / (py_path.name + "c")), doraise=True)


def test_ui_files_are_designer_xml_with_mrml_widgets():
    for ui_path in sorted(PROJECT_ROOT.glob("*/Resources/UI/*.ui")):
        root = ET.parse(ui_path).getroot()
        assert root.tag == "ui" and root.find("widget") is not None, ui_path.name
        custom = {node.findtext("class") for node in root.iter("customwidget")}
        used = {node.get("class") for node in root.iter("widget")}
        assert {c for c in used if c.startswith(("qMRML", "ctk"))} <= custom, f"{ui_path.name}: undeclared custom widgets"


def test_top_level_cmake_adds_only_existing_module_folders():
    top = _strip_comments((PROJECT_ROOT / "CMakeLists.txt").read_text(encoding="utf-8"))
    added = re.findall(r"add_subdirectory\(\s*([\w.-]+)\s*\)", top)
    assert sorted(added) == sorted(EXPECTED_MODULES)
    assert all((PROJECT_ROOT / name / "CMakeLists.txt").is_file() for name in added)


# ---------------------------------------------------------------- the checkers catch mistakes

UI_FIXTURE = """<?xml version="1.0" encoding="UTF-8"?>
<ui version="4.0"><class>Fixture</class>
 <widget class="qMRMLWidget" name="Fixture">
  <layout class="QVBoxLayout" name="mainLayout">
   <item><widget class="qMRMLNodeComboBox" name="inputSelector"/></item>
   <item><widget class="QPushButton" name="applyButton"/></item>
  </layout>
 </widget>
 <customwidgets><customwidget><class>qMRMLNodeComboBox</class><extends>QWidget</extends>
  <header>qMRMLNodeComboBox.h</header></customwidget></customwidgets>
</ui>
"""

MODULE_FIXTURE = '''
class Fixture:
    pass


class FixtureWidget:
    def setup(self):
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/Fixture.ui"))
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.inputSelector.setMRMLScene(slicer.mrmlScene)
        {extra}


class FixtureLogic:
    pass


class FixtureTest:
    def runTest(self):
        self.{test_called}()

    def test_fixture(self):
        pass
'''

CMAKE_FIXTURE = """set(MODULE_NAME Fixture)
set(MODULE_PYTHON_SCRIPTS
  ${MODULE_NAME}.py
  )
set(MODULE_PYTHON_RESOURCES
  Resources/Icons/${MODULE_NAME}.png
  Resources/UI/${MODULE_NAME}.ui
  )
slicerMacroBuildScriptedModule(NAME ${MODULE_NAME} SCRIPTS ${MODULE_PYTHON_SCRIPTS}
  RESOURCES ${MODULE_PYTHON_RESOURCES} WITH_GENERIC_TESTS)
if(BUILD_TESTING)
  add_subdirectory(Testing)
endif()
"""


def make_fixture_module(root: Path, extra: str = "pass", test_called: str = "test_fixture") -> Path:
    module = root / "Fixture"
    (module / "Resources" / "UI").mkdir(parents=True)
    (module / "Resources" / "Icons").mkdir()
    (module / "Testing" / "Python").mkdir(parents=True)
    (module / "Testing" / "Python" / "CMakeLists.txt").write_text("")
    (module / "Resources" / "Icons" / "Fixture.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (module / "Resources" / "UI" / "Fixture.ui").write_text(UI_FIXTURE)
    (module / "Fixture.py").write_text(MODULE_FIXTURE.format(extra=extra, test_called=test_called))
    (module / "CMakeLists.txt").write_text(CMAKE_FIXTURE)
    (root / "CMakeLists.txt").write_text("add_subdirectory(Fixture)\n")
    return module


def test_a_consistent_fixture_passes_every_checker(tmp_path):
    module = make_fixture_module(tmp_path)
    assert module_folders(tmp_path) == [module]
    assert ui_object_names(module / "Resources" / "UI" / "Fixture.ui") == {
        "Fixture", "mainLayout", "inputSelector", "applyButton"}
    assert missing_ui_names(module) == {}
    assert cmake_problems(module, tmp_path / "CMakeLists.txt") == []
    assert class_problems(module / "Fixture.py") == []


def test_a_ui_name_missing_from_the_ui_fails(tmp_path):
    module = make_fixture_module(tmp_path, extra="self.ui.outputSelector.setMRMLScene(slicer.mrmlScene)")
    assert missing_ui_names(module) == {"Fixture.py": {"outputSelector"}}


def test_a_missing_ui_file_fails(tmp_path):
    module = make_fixture_module(tmp_path)
    (module / "Resources" / "UI" / "Fixture.ui").rename(module / "Resources" / "UI" / "Other.ui")
    assert missing_ui_names(module) == {"Fixture.py": {"<missing UI file Fixture.ui>"}}
    assert "lists Resources/UI/Fixture.ui, which does not exist" in cmake_problems(module, tmp_path / "CMakeLists.txt")


def test_cmake_mistakes_are_reported(tmp_path):
    module = make_fixture_module(tmp_path)
    (module / "Helper.py").write_text("x = 1\n")
    cmake = CMAKE_FIXTURE.replace("WITH_GENERIC_TESTS", "").replace("${MODULE_NAME}.py", "${MODULE_NAME}.py\n  Gone.py")
    (module / "CMakeLists.txt").write_text(cmake)
    (tmp_path / "CMakeLists.txt").write_text("# add_subdirectory(Fixture)\n")
    problems = cmake_problems(module, tmp_path / "CMakeLists.txt")
    assert problems == ["slicerMacroBuildScriptedModule without WITH_GENERIC_TESTS",
                        "lists Gone.py, which does not exist",
                        "Helper.py sits beside Fixture.py (Slicer would load it as a module): move it into a package folder",
                        "the top-level CMakeLists.txt does not add_subdirectory(Fixture)"]


def test_a_self_test_that_runs_nothing_fails(tmp_path):
    module = make_fixture_module(tmp_path, test_called="setUp")
    assert class_problems(module / "Fixture.py") == ["FixtureTest.runTest calls no self.test_... method"]
    (module / "Fixture.py").write_text(MODULE_FIXTURE.format(extra="pass", test_called="test_gone"))
    assert class_problems(module / "Fixture.py") == ["FixtureTest.runTest calls test_gone, which FixtureTest does not define"]
    (module / "Fixture.py").write_text("class Fixture:\n    pass\n")
    assert class_problems(module / "Fixture.py") == ["no class FixtureWidget", "no class FixtureLogic", "no class FixtureTest"]


def test_a_syntax_error_fails_to_compile(tmp_path):
    module = make_fixture_module(tmp_path, extra="self.ui.applyButton.enabled = (")
    with pytest.raises(py_compile.PyCompileError):
        py_compile.compile(str(module / "Fixture.py"), cfile=str(tmp_path / "x.pyc"), doraise=True)


def test_the_extension_packages_an_existing_licence_and_readme():
    """The Extensions Index packs EXTENSION_LICENSE_FILE and EXTENSION_README_FILE; both must exist."""
    top = _strip_comments((PROJECT_ROOT / "CMakeLists.txt").read_text(encoding="utf-8"))
    for variable, name in (("EXTENSION_LICENSE_FILE", "LICENSE"), ("EXTENSION_README_FILE", "README.md")):
        assert re.search(rf"set\(\s*{variable}\s+\$\{{CMAKE_CURRENT_SOURCE_DIR\}}/{re.escape(name)}\s*\)", top), variable
        assert (PROJECT_ROOT / name).is_file()
    assert "Apache License" in (PROJECT_ROOT / "LICENSE").read_text(encoding="utf-8")


def _extension_setting(variable):
    top = _strip_comments((PROJECT_ROOT / "CMakeLists.txt").read_text(encoding="utf-8"))
    match = re.search(rf'set\(\s*{variable}\s+"([^"]*)"\s*\)', top)
    assert match, f"{variable} is not set in CMakeLists.txt"
    return match.group(1)


def test_extension_metadata_points_at_files_of_this_repository():
    """The Extensions Index checker rejects empty screenshot URLs; every URL must name a file we ship,
    under the homepage's repository, and the declared dependency is the extension that installs torch."""
    homepage = _extension_setting("EXTENSION_HOMEPAGE")
    raw = homepage.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    screenshots = _extension_setting("EXTENSION_SCREENSHOTURLS").split()
    assert len(screenshots) == 3
    for url in [_extension_setting("EXTENSION_ICONURL"), *screenshots]:
        assert url.startswith(raw), url
        path = PROJECT_ROOT / url[len(raw):]
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{url}: no PNG at {path}"
    assert {url.rsplit("/", 1)[-1] for url in screenshots} == {f"{m}.png" for m in ("DELICAITE", "DELICAITESegment",
                                                                                   "DELICAITERecommend")}
    assert _extension_setting("EXTENSION_DEPENDS") == "PyTorch"  # SlicerPyTorch: torch with a CPU/CUDA choice
