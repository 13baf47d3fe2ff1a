"""What the three modules keep in the scene, and how one module sees the steps another did.

A case's progress lives on its segmentation node (DELICAITECommon.caseState): "reviewed", the three
largest slices, the features table and the result table. The modules' choices live in their typed
parameter nodes. Both are real MRML here (slicer-core): the scene is saved to a .mrml file and read
back into a new scene, as a user's saved case would be. The parameter-node decorator is the stand-in of
slicer_stubs.py, which stores each field where Slicer's wrapper stores it.
"""

import types

import pytest

slicer = pytest.importorskip("slicer", reason="the module state tests need the slicer-core wheel (pip install '.[test]')")

from DELICAITELib import mrml  # noqa: E402
from DELICAITELib.demo import DEMO_CLINICAL  # noqa: E402

from slicer_stubs import load_module  # noqa: E402


@pytest.fixture()
def case(demo_case):
    return demo_case


@pytest.fixture()
def modules(app):
    return types.SimpleNamespace(hub=load_module("DELICAITE"), segment=load_module("DELICAITESegment"),
                                 recommend=load_module("DELICAITERecommend"))


def _done(hub, case):
    status = hub.DELICAITELogic.caseStatus(case.ap, case.vp, case.segmentation)
    return [step for step in hub.STEPS if status[step]]


def test_steps_done_in_segment_and_recommend_show_in_the_hub(app, case, modules, tmp_path):
    hub, segment = modules.hub.DELICAITELogic(), modules.segment.DELICAITESegmentLogic()
    recommend = modules.recommend.DELICAITERecommendLogic()
    assert _done(modules.hub, case) == ["phases", "segment"]

    markups, _ = segment.pickLargestSlices(case.ap, case.segmentation)  # Segment's button, not the hub's
    hub.setReviewed(case.segmentation, True)
    hub.computeFeatures(case.ap, case.vp, case.segmentation)
    result, nodes = recommend.compute(case.ap, case.vp, case.segmentation, DEMO_CLINICAL, recommend.demoModelPath(),
                                      tmp_path / "out")
    assert _done(modules.hub, case) == list(modules.hub.STEPS)
    assert hub.recommendationText(case.segmentation).startswith(f"{result.recommendation}: h = {result.prediction.score.h:+.3f}")
    # Picking again from the hub refills Segment's markups node rather than adding a second one.
    assert hub.pickSlices(case.ap, case.segmentation) is markups

    # Another case's result does not become this case's (the hub no longer takes the newest table).
    other = mrml.segmentation_node_from_label(app.scene, case.label, case.ap, "another case")
    recommend.compute(case.ap, case.vp, other, DEMO_CLINICAL, recommend.demoModelPath(), tmp_path / "other")
    assert hub.recommendationText(case.segmentation).endswith(f"({nodes['result_table'].GetName()})")
    assert hub.recommendationText(other) != "No recommendation for this case yet."

    # A one-click fix keeps the review (the reviewer made it); what was computed from the old mask lapses.
    segment.applyCorrection(case.segmentation, case.ap, "fill_liver_holes")
    assert _done(modules.hub, case) == ["phases", "segment", "correct"]
    assert app.scene.GetNodeByID(markups.GetID()) is markups  # lapsed, not deleted
    assert app.scene.GetNodeByID(nodes["result_table"].GetID()) is nodes["result_table"]

    # A new automatic mask waits for a new review.
    segment.pickLargestSlices(case.ap, case.segmentation)
    segment._writeLabel(case.ap, case.segmentation, case.label)  # where both automatic segmentation paths end
    assert _done(modules.hub, case) == ["phases", "segment"]
    assert "Not marked reviewed" in recommend.reviewLine(case.segmentation)


def test_case_state_and_module_parameters_survive_saving_the_scene(app, case, modules, tmp_path, monkeypatch):
    hub, segment = modules.hub.DELICAITELogic(), modules.segment.DELICAITESegmentLogic()
    recommend = modules.recommend.DELICAITERecommendLogic()
    hub_parameters = hub.getParameterNode()
    hub_parameters.apVolume, hub_parameters.vpVolume, hub_parameters.segmentation = case.ap, case.vp, case.segmentation
    hub_parameters.casesDir = tmp_path / "cases"
    hub_parameters.device = "auto"
    hub.setReviewed(case.segmentation, True)
    markups, _ = segment.pickLargestSlices(case.ap, case.segmentation)
    segment.getParameterNode().slicesMarkups = markups
    _, nodes = recommend.compute(case.ap, case.vp, case.segmentation, DEMO_CLINICAL, recommend.demoModelPath(),
                                 tmp_path / "out")
    recommend_parameters = recommend.getParameterNode()
    form = {"age": "61", "alb": "38.5", "cirrhosis": "true", "sex": "male"}
    recommend_parameters.clinicalForm = form
    for key, field in modules.recommend.RESULT_NODE_FIELDS.items():
        setattr(recommend_parameters, field, nodes[key])
    shown = recommend.resultValues(recommend_parameters.resultTable)
    assert shown["recommendation"][0] in ("TACE", "HAIC", "no clear preference")

    path = mrml.save_scene(app.scene, tmp_path / "saved" / "case.mrml")
    reloaded = mrml.load_scene(path)
    monkeypatch.setattr(slicer, "mrmlScene", reloaded)

    hub_parameters = hub.getParameterNode()
    assert hub_parameters.parameterNode.GetScene() is reloaded
    assert [hub_parameters.apVolume.GetName(), hub_parameters.vpVolume.GetName(), hub_parameters.segmentation.GetName()] \
        == ["phantom AP", "phantom VP", "phantom segmentation"]
    assert (hub_parameters.casesDir, hub_parameters.device) == (tmp_path / "cases", "auto")
    assert _done(modules.hub, types.SimpleNamespace(ap=hub_parameters.apVolume, vp=hub_parameters.vpVolume,
                                                    segmentation=hub_parameters.segmentation)) \
        == ["phases", "segment", "correct", "slices", "recommend"]
    assert segment.getParameterNode().slicesMarkups.GetNumberOfControlPoints() == 3
    recommend_parameters = recommend.getParameterNode()
    assert recommend_parameters.clinicalForm == form
    # The table's file keeps six significant digits (vtkMRMLTableStorageNode): the text shown is the same.
    reread = recommend.resultValues(recommend_parameters.resultTable)
    assert {q: text for q, (text, _) in reread.items()} == {q: text for q, (text, _) in shown.items()}
    assert [number for _, number in reread.values()] == pytest.approx([n for _, n in shown.values()], rel=1e-5, nan_ok=True)
    assert recommend_parameters.riskChart.GetNumberOfPlotSeriesNodes() == 2


def test_unset_parameters_read_as_their_defaults(app, modules):
    parameters = modules.recommend.DELICAITERecommendLogic().getParameterNode()
    assert parameters.clinicalForm == {} and parameters.resultTable is None
    assert modules.hub.DELICAITELogic().getParameterNode().device == "cpu"
    # One parameter node per module, found again rather than added twice.
    modules.recommend.DELICAITERecommendLogic().getParameterNode()
    assert app.scene.GetNodesByClass("vtkMRMLScriptedModuleNode").GetNumberOfItems() == 2


class _LayoutManager:
    def __init__(self, layout):
        self.layout = layout

    def setLayout(self, layout):
        self.layout = layout


def test_a_switched_layout_is_given_back_unless_the_user_chose_another(app, monkeypatch):
    import DELICAITECommon.support as support

    manager = _LayoutManager(layout=3)
    monkeypatch.setattr(slicer.app, "layoutManager", lambda: manager)
    keeper = support.LayoutKeeper()
    keeper.switchTo(15701)
    keeper.switchTo(35)  # a second switch still remembers the user's layout
    keeper.restore()
    assert manager.layout == 3
    keeper.switchTo(15701)
    manager.setLayout(6)  # the user picks a layout of their own meanwhile
    keeper.restore()
    assert manager.layout == 6
