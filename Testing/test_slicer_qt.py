"""The PythonQt shim (slicer_qt.py) and the slice views (slice_views.py) on real Qt widgets and real MRML.

Each module's .ui is loaded with the shim and checked against what the module file does with
``self.ui``: the widget exists, has a sensible class, and has the property, method or signal used.
The composed screenshot is kept in Testing/output/slicer_qt/ for a person to look at.
"""

import ast
import re
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets", reason="the Qt shim needs PySide6 with its system libraries (pip install '.[test]'; .ci/run installs libfontconfig1, libxkbcommon0, libglib2.0-0, libdbus-1-3)")
pytest.importorskip("slicer", reason="the Qt shim tests need the slicer-core wheel (pip install '.[test]')")

import slicer  # noqa: E402
import slicer_qt  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

from DELICAITELib import mrml  # noqa: E402
from DELICAITELib.phantom import make_phantom  # noqa: E402
from DELICAITELib.mrml.volumes import ijk_to_ras  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("DELICAITE", "DELICAITESegment", "DELICAITERecommend")
OUTPUT = Path(__file__).resolve().parent / "output" / "slicer_qt"
# What a widget's name says it is (longest suffix first).
SUFFIX_CLASSES = (("CollapsibleButton", slicer_qt.ctkCollapsibleButton), ("TableWidget", QtWidgets.QTableWidget),
                  ("TableView", QtWidgets.QTableView), ("ComboBox", QtWidgets.QComboBox),
                  ("CheckBox", QtWidgets.QCheckBox), ("GroupBox", QtWidgets.QGroupBox),
                  ("ProgressBar", QtWidgets.QProgressBar), ("LineEdit", QtWidgets.QLineEdit),
                  ("Selector", (slicer_qt.qMRMLNodeComboBox, slicer_qt.ctkPathLineEdit)),
                  ("Button", QtWidgets.QAbstractButton), ("Label", QtWidgets.QLabel),
                  ("Text", QtWidgets.QPlainTextEdit))
# Signals the modules connect on widgets they make at run time (DELICAITECommon.support, Recommend's form).
RUNTIME_SIGNALS = {"clicked(bool)": "QPushButton", "timeout()": "QTimer", "textChanged(QString)": "QLineEdit",
                   "toggled(bool)": "QCheckBox", "currentIndexChanged(int)": "QComboBox"}


@pytest.fixture(scope="module")
def qt():
    return slicer_qt.make_qt_module()


@pytest.fixture()
def as_qt(qt, monkeypatch):
    """The shim as `import qt`, and the hub's folder on sys.path (DELICAITECommon), as in Slicer."""
    monkeypatch.setitem(sys.modules, "qt", qt)
    monkeypatch.syspath_prepend(str(ROOT / "DELICAITE"))
    return qt


def ui_path(module):
    return ROOT / module / "Resources" / "UI" / f"{module}.ui"


def module_source(module):
    return (ROOT / module / f"{module}.py").read_text(encoding="utf-8")


def ui_uses(source):
    """{widget name: [(attribute, "(" call / "=" assignment / "" read)]} for each self.ui.<name>[.<attr>]
    in the source, without names the module assigns itself; getattr(self.ui, var + "Suffix") in a
    loop over a module-level tuple (there or in DELICAITECommon) counts as each name it makes."""
    created = set(re.findall(r"self\.ui\.(\w+)\s*=(?!=)", source))
    uses = {}
    for name, attribute, how in re.findall(r"self\.ui\.(\w+)(?:\.(\w+)\s*(\(|=(?!=))?)?", source):
        if name not in created:
            uses.setdefault(name, []).extend([(attribute, how)] if attribute else [])
    shared = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "DELICAITE" / "DELICAITECommon").glob("*.py"))]
    constants = {t.id: ast.literal_eval(node.value) for text in [*shared, source] for node in ast.parse(text).body
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)
                 and all(isinstance(e, ast.Constant) for e in node.value.elts)
                 for t in node.targets if isinstance(t, ast.Name)}
    for var, suffix in re.findall(r'getattr\(self\.ui, (\w+) \+ "(\w+)"\)', source):
        for value in constants[re.search(rf"for {var} in (\w+)", source).group(1)]:
            uses.setdefault(value + suffix, [])
    return uses


# ---- the .ui files against the module files -----------------------------------------------------------

@pytest.mark.parametrize("module", MODULES)
def test_every_widget_the_module_uses_is_in_its_ui(qt, module):
    widget = slicer_qt.load_ui(ui_path(module))
    ui = slicer_qt.child_widget_variables(widget)
    source = module_source(module)
    uses = ui_uses(source)
    assert len(uses) >= 12, f"the parse of {module}.py found too few self.ui names: {sorted(uses)}"
    for name, accesses in uses.items():
        assert hasattr(ui, name), f"{module}.py uses self.ui.{name}, which {module}.ui does not have"
        child = getattr(ui, name)
        expected = next((cls for suffix, cls in SUFFIX_CLASSES if name.lower().endswith(suffix.lower())), None)
        assert expected is not None, f"no expected class for a widget named {name}"
        assert isinstance(child, expected), f"{module}.ui: {name} is a {type(child).__name__}"
        assert isinstance(child, slicer_qt.PythonQtAPI)
        for attribute, how in accesses:
            if how == "(":
                assert callable(getattr(child, attribute)), f"{name}.{attribute}() is not a method here"
            elif how == "=":
                assert attribute in slicer_qt._qt_properties(child), f"{name}.{attribute} is not a Qt property"
            else:
                assert hasattr(child, attribute), f"{name} has no {attribute}"
    for name, signature in re.findall(r'self\.ui\.(\w+)\.connect\("([^"]+)"', source):
        assert slicer_qt.connect(getattr(ui, name), signature, lambda *args: None)


def test_every_signal_the_modules_connect_exists(qt):
    """Signatures connected on run-time widgets (not self.ui) are in RUNTIME_SIGNALS, and exist there."""
    sources = [module_source(m) for m in MODULES] + [(ROOT / "DELICAITE" / "DELICAITECommon" / "support.py").read_text(
        encoding="utf-8")]
    used = {s for source in sources for s in re.findall(r'\.connect\("([^"]+)"', source)}
    on_ui = {s for source in sources for s in re.findall(r'self\.ui\.\w+\.connect\("([^"]+)"', source)}
    assert used - on_ui - {"startupCompleted()"} <= set(RUNTIME_SIGNALS), used - on_ui  # that one is slicer.app's
    for signature, class_name in RUNTIME_SIGNALS.items():
        assert slicer_qt.connect(getattr(qt, class_name)(), signature, lambda *args: None)


@pytest.mark.parametrize("module", MODULES)
def test_ui_connections_name_widgets_that_exist(qt, module):
    """Qt's loader only warns about a <connection> to a missing widget; the selector then has no scene."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        slicer_qt.load_ui(ui_path(module))


def test_slicer_util_load_ui_runs_on_the_shim(as_qt):
    """slicer-core's own slicer.util.loadUI / childWidgetVariables (PythonQt code) give the same widgets."""
    widget = slicer.util.loadUI(str(ui_path("DELICAITESegment")))
    ui = slicer.util.childWidgetVariables(widget)
    ours = slicer_qt.child_widget_variables(widget)
    assert {n for n, w in vars(ours).items() if isinstance(w, slicer_qt.PythonQtAPI)} == set(vars(ui))
    assert isinstance(ui.inputVolumeSelector, slicer_qt.qMRMLNodeComboBox)


# ---- PythonQt behaviour -------------------------------------------------------------------------------

def test_signals_reach_python_slots_as_pythonqt_passes_them(qt):
    button, got = qt.QPushButton("Go"), []
    button.connect("clicked(bool)", lambda: got.append("no args"))
    button.connect("clicked(bool)", lambda checked: got.append(checked))
    button.connect("clicked(bool)", lambda checked=True, name="kept": got.append(name))
    button.click()
    assert got == ["no args", False, "kept"]
    table = qt.QTableWidget(2, 2)
    table.connect("cellClicked(int,int)", lambda row, column: got.append((row, column)))
    table.cellClicked.emit(1, 0)
    assert got[-1] == (1, 0)
    with pytest.raises(ValueError, match="no signal"):
        button.connect("clicked(int)", print)
    errors = len(slicer_qt.slot_errors)
    button.connect("clicked(bool)", lambda: {}["missing"])
    button.click()  # PySide6 prints the traceback and goes on, as PythonQt does
    assert isinstance(slicer_qt.slot_errors[errors], KeyError)


def test_qt_properties_are_attributes(qt):
    label, edit, box, combo, bar = qt.QLabel(), qt.QLineEdit(), qt.QCheckBox(), qt.QComboBox(), qt.QProgressBar()
    label.text, label.wordWrap, label.styleSheet, label.toolTip = "h = +0.42", True, "color: #c0392b;", "tip"
    assert (label.text, label.wordWrap, label.styleSheet, label.toolTip) == ("h = +0.42", True, "color: #c0392b;",
                                                                            "tip")
    assert QtWidgets.QLabel.text(label) == "h = +0.42"  # the real widget holds it
    edit.placeholderText, edit.text = "mg/dL", "1.2"
    assert (edit.placeholderText, edit.text) == ("mg/dL", "1.2")
    toggled = []
    box.connect("toggled(bool)", toggled.append)
    box.checked, box.enabled = True, False
    assert (box.checked, box.enabled, toggled) == (True, False, [True])
    indices = []
    for text in ("a", "b", "c"):
        combo.addItem(text)
    combo.connect("currentIndexChanged(int)", indices.append)
    combo.currentIndex = 2
    assert (combo.currentIndex, combo.currentText, indices) == (2, "c", [2])
    bar.value = 40
    assert (bar.value, bar.text) == (40, "40%")
    label.visible = False
    assert label.isHidden()
    with pytest.raises(TypeError):
        label.sizeHint = QtCore.QSize(1, 1)  # read-only, as in PythonQt
    with pytest.raises(AttributeError):
        label.noSuchThing


def test_ui_properties_the_shim_does_not_know_stay_dynamic(qt):
    recommend = slicer_qt.load_ui(ui_path("DELICAITERecommend"))
    ui = slicer_qt.child_widget_variables(recommend)
    assert ui.apVolumeSelector.SlicerParameterName == "apVolume"
    assert ui.apVolumeSelector.addEnabled is False
    assert ui.modelPathLineEdit.filters.startswith("ctkPathLineEdit::Dirs")  # a <set> Qt cannot read
    assert ui.apVolumeSelector.nodeTypes == ["vtkMRMLScalarVolumeNode"]


# ---- the Slicer / CTK stand-ins ------------------------------------------------------------------------

def test_node_selectors_list_the_nodes_of_a_real_scene(qt):
    scene = mrml.new_scene()
    phantom = make_phantom()
    widget = slicer_qt.load_ui(ui_path("DELICAITE"))
    ui = slicer_qt.child_widget_variables(widget)
    ap = mrml.volume_node_from_image(scene, phantom.ap, "AP")
    widget.setMRMLScene(scene)  # through the .ui's mrmlSceneChanged -> setMRMLScene connections
    changed = []
    ui.vpVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", changed.append)
    vp = mrml.volume_node_from_image(scene, phantom.vp, "VP")  # added after: the selectors follow
    mrml.volume_node_from_image(scene, phantom.label, "label", labelmap=True)  # a child class: not listed
    segmentation = mrml.segmentation_node_from_label(scene, phantom.label, ap, "Segmentation")

    texts = [QtWidgets.QComboBox.itemText(ui.vpVolumeSelector, i) for i in range(ui.vpVolumeSelector.count)]
    assert texts == ["none: single-phase", "AP", "VP"]
    assert ui.apVolumeSelector.currentNode() is ap  # noneEnabled false: the first node is selected
    assert ui.vpVolumeSelector.currentNode() is None and ui.vpVolumeSelector.currentNodeID == ""
    assert [n.GetName() for n in ui.segmentationSelector.nodes()] == ["Segmentation"]
    ui.vpVolumeSelector.setCurrentNode(vp)
    assert ui.vpVolumeSelector.currentNode() is vp and ui.vpVolumeSelector.currentNodeID == vp.GetID()
    assert changed == [vp]
    scene.RemoveNode(vp)
    assert ui.vpVolumeSelector.currentNode() is None and changed[-1] is None
    ui.segmentationSelector.currentNodeID = segmentation.GetID()
    assert ui.segmentationSelector.currentNode() is segmentation


def test_collapsible_button_path_edit_and_table_view(qt):
    import pandas as pd

    hub = slicer_qt.load_ui(ui_path("DELICAITE"))
    ui = slicer_qt.child_widget_variables(hub)
    assert ui.demoCollapsibleButton.collapsed and ui.runDemoButton.isHidden()  # collapsed in the .ui
    ui.demoCollapsibleButton.collapsed = False
    assert not ui.runDemoButton.isHidden() and ui.demoCollapsibleButton.text == "Demo"

    ui.casesDirSelector.settingKey = "DELICAITE/CohortCasesDir"
    ui.casesDirSelector.currentPath = "/data/cases"
    ui.casesDirSelector.addCurrentPathToHistory()
    assert ui.casesDirSelector.settingKey == "DELICAITE/CohortCasesDir"
    assert ui.casesDirSelector.history == ["/data/cases"]

    recommend = slicer_qt.load_ui(ui_path("DELICAITERecommend"))  # owns its widgets: keep it
    view = slicer_qt.child_widget_variables(recommend).resultTableView
    table = mrml.table_node_from_frame(mrml.new_scene(), pd.DataFrame({"quantity": ["h", "P(PD | TACE)"],
                                                                       "value": [0.42, 0.31]}), "result")
    view.setMRMLTableNode(table)
    assert (view.rowCount, view.columnCount) == (2, 2)
    assert [view.item(1, c).text() for c in range(2)] == ["P(PD | TACE)", "0.31"]
    table.GetTable().SetValue(0, 1, 0.5)
    table.Modified()  # the view follows the node
    assert view.item(0, 1).text() == "0.5"
    view.setMRMLTableNode(None)
    assert view.rowCount == 0


def test_support_code_runs_on_real_widgets(as_qt):
    """DELICAITECommon.support's DependencyPanel and BackgroundRunner, unchanged, on the shim."""
    import DELICAITECommon.support as support

    panel = as_qt.QWidget()
    layout = as_qt.QVBoxLayout(panel)
    layout.addWidget(slicer_qt.load_ui(ui_path("DELICAITE")))
    dependencies = support.DependencyPanel(types.SimpleNamespace(layout=layout), "DELICAITE")
    assert layout.itemAt(0).widget() is dependencies.label.parent()  # inserted above the .ui
    assert dependencies.label.text.startswith("Python packages")
    assert dependencies.button.isHidden() == ("all installed" in dependencies.label.text)

    class Job:  # a background job that reports twice, then ends
        running, cancelled = True, False
        reports = [["started"], ["half way"]]

        def poll(self):
            if not self.reports:
                self.running = False
            return self.reports.pop(0) if self.reports else []

        def wait(self, timeout=None):
            pass

    events, done = [], []
    runner = support.BackgroundRunner(pollIntervalMs=5)
    runner.start(Job(), onEvent=events.append, onDone=done.append)
    deadline = time.monotonic() + 10
    while not done and time.monotonic() < deadline:
        slicer_qt.process_events()  # the real QTimer fires here
        time.sleep(0.005)
    assert events == ["started", "half way"] and len(done) == 1 and not runner.isRunning()


# ---- slice views and the screenshot ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def case():
    """The phantom with a bright marker in the patient's left, anterior, superior corner (in air)."""
    from DELICAITELib.mrml.rendering import can_render_offscreen

    works, why = can_render_offscreen()
    if not works:
        pytest.skip(f"no offscreen OpenGL context here: {why}")
    phantom = make_phantom()
    voxels = sitk.GetArrayFromImage(phantom.ap)  # [k, j, i]; LPS: i to the left, j to posterior
    voxels[30:38, 6:18, 170:186] = 1000.0
    marked = sitk.GetImageFromArray(voxels)
    marked.CopyInformation(phantom.ap)
    scene = mrml.new_scene()
    volume = mrml.volume_node_from_image(scene, marked, "AP")
    segmentation = mrml.segmentation_node_from_label(scene, phantom.label, volume, "Liver and tumour")
    tumour = np.argwhere(sitk.GetArrayFromImage(phantom.label) == 2).mean(axis=0)[::-1]  # (i, j, k)
    return types.SimpleNamespace(scene=scene, volume=volume, segmentation=segmentation,
                                 marker=ijk_to_ras(volume, (177.5, 11.5, 33.5)), tumour=ijk_to_ras(volume, tumour))


def on_screen(volume, point, view, size=400):
    """(row, column) of RAS ``point`` in a view fitted to the volume: patient right on the image's left,
    anterior (axial) or superior (coronal) up."""
    bounds = [0.0] * 6
    volume.GetRASBounds(bounds)
    low, high = np.array(bounds[0::2]), np.array(bounds[1::2])
    vertical = {"Red": 1, "Green": 2}[view]
    scale = size / max(high[0] - low[0], high[vertical] - low[vertical])
    centre = (low + high) / 2
    row = size / 2 + (centre[vertical] - point[vertical]) * scale
    return int(row), int(size / 2 + (centre[0] - point[0]) * scale)


def test_slice_views_show_the_volume_and_segments_as_slicer_does(case):
    import slice_views

    bare = slice_views.render_slice_views(case.volume, None, focus_ras=case.marker, bar=False)
    for view in ("Red", "Green"):
        picture = bare[view]
        assert picture.shape == (400, 400, 3)
        row, column = on_screen(case.volume, case.marker, view)
        assert picture[row, column].min() > 240, f"{view}: the marker is not where Slicer shows it"
        assert picture[row, 400 - column].max() < 60, f"{view}: left and right are swapped"
        assert picture[400 - row, column].max() < 60, f"{view}: up and down are swapped"

    overlaid = slice_views.render_slice_views(case.volume, case.segmentation, focus_ras=case.tumour, bar=False)
    plain = slice_views.render_slice_views(case.volume, None, focus_ras=case.tumour, bar=False)
    row, column = on_screen(case.volume, case.tumour, "Red")
    assert column < 200  # the tumour lies in the patient's right liver: the image's left
    tinted = overlaid["Red"][row - 2:row + 3, column - 2:column + 3].astype(float).mean(axis=(0, 1))
    grey = plain["Red"][row - 2:row + 3, column - 2:column + 3].astype(float).mean(axis=(0, 1))
    assert abs(grey[0] - grey[2]) < 8 and tinted[0] - tinted[2] > 40  # yellow (0.95, 0.85, 0.15) over grey
    np.testing.assert_array_equal(overlaid["Red"][:20, 360:], plain["Red"][:20, 360:])  # air: untouched

    labelled = slice_views.render_slice_views(case.volume, case.segmentation, views=("Red",))["Red"]
    assert labelled.shape == (400 + slice_views.BAR_HEIGHT, 400, 3)
    np.testing.assert_array_equal(labelled[2, 200], [0xF3, 0x4A, 0x33])  # Slicer's red view colour


def test_composed_screenshot_of_the_hub_panel_beside_the_views(case, as_qt):
    import DELICAITECommon.support as support
    import slice_views

    panel = as_qt.QWidget()
    panel.setFixedWidth(420)
    layout = as_qt.QVBoxLayout(panel)
    ui_widget = slicer_qt.load_ui(ui_path("DELICAITE"))
    layout.addWidget(ui_widget)
    ui_widget.setMRMLScene(case.scene)
    support.DependencyPanel(types.SimpleNamespace(layout=layout), "DELICAITE")
    ui = slicer_qt.child_widget_variables(ui_widget)
    ui.segmentationSelector.setCurrentNode(case.segmentation)
    ui.phaseCheckLabel.text = "No portal-venous phase: single-phase (AP used for both phases)."
    views = slice_views.render_slice_views(case.volume, case.segmentation, focus_ras=case.tumour)

    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = slice_views.compose_screenshot(panel, views, OUTPUT / "hub_panel_and_views.png")
    picture = QtGui.QImage(str(path))
    view_height = picture.height() // 2  # the two views share the panel's height
    assert abs(picture.width() - 420 - 400 * view_height / (400 + slice_views.BAR_HEIGHT)) <= 1
    assert picture.pixelColor(420 + 150, 3).name() == "#f34a33"  # the red view's bar, top right
    assert picture.pixelColor(420 + 150, picture.height() // 2 + 3).name() == "#6eb04b"  # the green one below
    assert [p.name for p in OUTPUT.iterdir() if p.suffix == ".png" and p.name.startswith("tmp")] == []
