"""The three module Widgets set up and clicked here, as a user would, and their panels photographed.

Real Qt widgets offscreen (slicer_qt: PythonQt's API on PySide6, the .ui files loaded by Qt's loader),
real MRML nodes in a real scene (slicer-core), and stand-ins only for the application (slicer_stubs:
module base classes, the parameter-node decorator without GUI binding, dialogs answered by the test).
Each test saves its module's panel beside Slicer's red and green slice views of the case to
Testing/output/screenshots/ (the Extensions Index pictures in docs/screenshots are copies of these).

Still only inside Slicer (the modules' self-tests): the parameter nodes' widget binding (connectGui),
the Segment Editor, Sample Data, layouts and views of the main window, and PythonSlicer as the Python
of background jobs.
"""

import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="the module widget tests need the slicer-core wheel (pip install '.[test]')")
pytest.importorskip("PySide6.QtWidgets", reason="the module widget tests need PySide6 with its system libraries (pip install '.[test]'; .ci/run installs them)")

import slicer_qt  # noqa: E402
from DELICAITELib import mrml  # noqa: E402
from DELICAITELib.demo import DEMO_CLINICAL  # noqa: E402
from PySide6 import QtCore  # noqa: E402

from slicer_stubs import load_module  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parent / "output" / "screenshots"
DONE = "done \u2713"


@pytest.fixture()
def gui(app, monkeypatch):
    """The Qt shim as `qt`; dialogs recorded and answered by the test; module panels by name."""
    qt = slicer_qt.make_qt_module()
    monkeypatch.setitem(sys.modules, "qt", qt)
    said = types.SimpleNamespace(errors=[], questions=[], answer=True, selected=[])
    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, **kwargs: said.errors.append(text))
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay",
                        lambda text, **kwargs: said.questions.append(text) or said.answer)
    monkeypatch.setattr(slicer.util, "mainWindow", lambda: None)
    application = slicer_qt.application()  # the wait cursor of tryWithErrorDisplay, on the real QApplication
    monkeypatch.setattr(slicer.app, "setOverrideCursor", application.setOverrideCursor, raising=False)
    monkeypatch.setattr(slicer.app, "restoreOverrideCursor", application.restoreOverrideCursor, raising=False)
    monkeypatch.setattr(slicer.util, "showStatusMessage", lambda *args, **kwargs: None)
    widgets = {}
    monkeypatch.setattr(slicer.util, "selectModule", said.selected.append)
    monkeypatch.setattr(slicer.util, "getModuleWidget", widgets.__getitem__)
    slicer_qt.slot_errors.clear()
    yield types.SimpleNamespace(qt=qt, said=said, widgets=widgets, scene=app.scene)
    for widget in widgets.values():
        widget.cleanup()
    assert slicer_qt.slot_errors == [], "a slot raised (PySide6 only prints it)"


@pytest.fixture()
def case(demo_case):
    return demo_case


def open_module(gui, name):
    """The module's panel, set up and entered, as Slicer does when the module is selected."""
    module = load_module(name)
    widget = getattr(module, f"{name}Widget")()
    widget.setup()
    widget.parent.isEntered = True
    widget.enter()
    gui.widgets[name] = widget
    return module, widget


def click(button):
    assert button.enabled, f"{button.objectName()} is disabled"
    button.click()
    slicer_qt.process_events()


def wait_until_idle(runner, guard_s=600):
    """Let the real QTimer poll a background job until it has reported back."""
    deadline = time.time() + guard_s
    while runner.isRunning():
        assert time.time() < deadline, "the background job never reported back"
        slicer_qt.process_events()
        time.sleep(0.05)


def save_screenshot(widget, case, name):
    """The panel beside the red (axial) and green (coronal) views through the tumour, as a PNG."""
    from DELICAITELib.mrml.rendering import can_render_offscreen

    import slice_views

    works, why = can_render_offscreen()
    if not works:
        pytest.skip(f"no offscreen OpenGL context for the slice views: {why}")
    widget.parent.setFixedWidth(440)
    views = slice_views.render_slice_views(case.ap, case.segmentation, focus_ras=case.tumour)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return Path(slice_views.compose_screenshot(widget.parent, views, SCREENSHOTS / f"{name}.png"))


def connected(button):
    signal = QtCore.QMetaMethod.fromSignal(button.clicked)
    return QtCore.QObject.isSignalConnected(button, signal)


@pytest.mark.parametrize("name", ["DELICAITE", "DELICAITESegment", "DELICAITERecommend"])
def test_each_panel_sets_up_with_every_button_wired(gui, name):
    _, widget = open_module(gui, name)
    buttons = [w for w in vars(widget.ui).values() if isinstance(w, gui.qt.QPushButton)]
    assert len(buttons) >= 5
    assert [b.objectName() for b in buttons if not connected(b)] == []
    assert widget.dependencyPanel.label.text.startswith("Python packages: all installed")
    assert not widget.dependencyPanel.button.visible
    assert widget._parameterNode is not None  # entered: bound to its parameter node


def test_hub_panel_follows_the_case_whichever_module_does_the_step(gui, case, tmp_path):
    hub_module, hub = open_module(gui, "DELICAITE")
    parameters = hub._parameterNode
    parameters.apVolume, parameters.vpVolume, parameters.segmentation = case.ap, case.vp, case.segmentation

    def statuses():
        return [getattr(hub.ui, f"{step}StatusLabel").text == DONE for step in hub_module.STEPS]

    assert statuses() == [True, True, False, False, False, False]
    assert not hub.ui.featuresButton.enabled  # features need the slices first
    hub.ui.reviewedCheckBox.click()
    assert case.segmentation.GetAttribute("DELICAITE.Reviewed") == "true" and statuses()[2]

    # Step 4 done in DELICAITE Segment: the hub's status follows without a click here.
    segment = load_module("DELICAITESegment").DELICAITESegmentLogic()
    segment.pickLargestSlices(case.ap, case.segmentation)
    assert statuses()[3] and hub.ui.featuresButton.enabled

    click(hub.ui.featuresButton)
    assert statuses()[4]
    recommend = load_module("DELICAITERecommend").DELICAITERecommendLogic()
    result, _ = recommend.compute(case.ap, case.vp, case.segmentation, DEMO_CLINICAL,
                                  recommend.demoModelPath(), tmp_path / "out")
    assert statuses() == [True] * 6
    assert hub.ui.recommendResultLabel.text.startswith(result.recommendation)
    save_screenshot(hub, case, "DELICAITE")

    # A new automatic mask: the review box clears itself, and steps 4-6 are to do again.
    segment._writeLabel(case.ap, case.segmentation, case.label)
    assert statuses() == [True, True, False, False, False, False] and not hub.ui.reviewedCheckBox.checked

    click(hub.ui.runCohortButton)  # no folders chosen
    assert gui.said.errors == ["Choose a cases folder and an output folder."]
    _, segment_panel = open_module(gui, "DELICAITESegment")
    click(hub.ui.segmentButton)  # hands the case to DELICAITE Segment
    assert gui.said.selected == ["DELICAITESegment"]
    assert segment_panel._parameterNode.outputSegmentation is case.segmentation


def test_segment_panel_picks_slices_and_undoes_a_fix(gui, case):
    _, panel = open_module(gui, "DELICAITESegment")
    panel.setCaseNodes(case.ap, case.vp, case.segmentation)
    assert panel.ui.inputVolumeSelector.currentNode() is case.ap  # the stand-in binds no GUI: set here
    click(panel.ui.pickSlicesButton)
    table = panel.ui.slicesTableWidget
    assert table.rowCount == 3
    areas = [float(table.item(row, 2).text()) for row in range(3)]
    assert areas == sorted(areas, reverse=True) and areas[0] > 0
    assert panel._parameterNode.slicesMarkups.GetNumberOfControlPoints() == 3

    assert not panel.ui.undoCorrectionButton.enabled
    before = sitk.GetArrayFromImage(mrml.label_from_segmentation_node(case.segmentation, case.ap))
    click(panel.ui.fillHolesButton)
    assert panel.ui.statusLabel.text.startswith("Filled holes in the liver.")
    click(panel.ui.undoCorrectionButton)
    assert panel.ui.statusLabel.text.startswith("Undid the last fix.")
    after = sitk.GetArrayFromImage(mrml.label_from_segmentation_node(case.segmentation, case.ap))
    np.testing.assert_array_equal(after, before)
    click(panel.ui.pickSlicesButton)
    save_screenshot(panel, case, "DELICAITESegment")


@pytest.mark.slow
def test_recommend_panel_keeps_its_form_asks_about_review_and_shows_the_result(gui, case):
    module, panel = open_module(gui, "DELICAITERecommend")
    panel.setCaseNodes(case.ap, case.vp, case.segmentation)
    assert "Not marked reviewed" in panel.ui.reviewStatusLabel.text

    click(panel.ui.fillDemoPatientButton)
    form = dict(panel._parameterNode.clinicalForm)
    assert form["afp"] and form == {k: (("true" if v else "false") if isinstance(v, bool) else v)
                                    for k, v in panel.formValues().items()}
    panel.form.inputs["alb"].text = "3.5 g/dL"  # a unit the form refuses, inline
    assert "g/L" in panel.form.messages["alb"].text and not panel.form.messages["alb"].isHidden()
    panel.form.inputs["alb"].text = form["alb"]

    # Another panel on the same scene (a reopened scene) shows the form as it was typed.
    gui.widgets.pop("DELICAITERecommend")
    _, reopened = open_module(gui, "DELICAITERecommend")
    assert reopened.formValues() == panel.formValues()
    panel.cleanup()

    # An unreviewed mask: asked first, and nothing runs when the answer is Cancel.
    gui.said.answer = False
    click(reopened.ui.computeButton)
    assert len(gui.said.questions) == 1 and not reopened.logic.isRunning()
    load_module("DELICAITE").DELICAITELogic.setReviewed(case.segmentation, True)
    assert reopened.ui.reviewStatusLabel.text.startswith("Reviewed")

    click(reopened.ui.computeButton)  # the case as `delicaite case` in a background process
    assert reopened.logic.isRunning() and reopened.ui.cancelButton.enabled
    wait_until_idle(reopened.logic.runner)
    assert gui.said.errors == [] and reopened.ui.progressBar.value == 100
    assert reopened.ui.recommendationValueLabel.text.split(" (")[0] in ("TACE", "HAIC", "no clear preference")
    result_table = reopened._parameterNode.resultTable
    assert case.segmentation.GetNodeReference("DELICAITEResult") is result_table
    assert reopened.ui.exportReportButton.enabled and reopened.ui.showChartButton.enabled
    shown = reopened.ui.hValueLabel.text
    save_screenshot(reopened, case, "DELICAITERecommend")

    # Closing the panel's view of the result and entering again shows it from the scene's table.
    reopened.afterSceneClose()
    assert reopened.ui.hValueLabel.text == "–"
    reopened.enter()
    assert reopened.ui.hValueLabel.text == shown
    # Computing again replaces this case's result once the new one is complete: one result per case.
    click(reopened.ui.computeButton)
    wait_until_idle(reopened.logic.runner)
    assert gui.scene.GetNodeByID(result_table.GetID()) is None
    tables = slicer.util.getNodesByClass("vtkMRMLTableNode")
    assert len([n for n in tables if n.GetName().startswith("DELICAITE result")]) == 1
