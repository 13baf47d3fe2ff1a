"""The Logic classes of the three Slicer modules, run outside the application.

The modules' own self-tests need the Slicer application; here the module files are imported with
small stand-ins for what only the application has (the ScriptedLoadableModule base classes, the
parameter-node decorator, qt's timer, the markups module's "jump slices" call), while every node is a
real MRML node of the slicer-core wheel in a real scene. So the Logic code that the buttons call runs
for real: segmentation (in-process and as a background process with cancel), the one-click fixes and
undo, the three largest slices, features, the recommendation (in this process and in the background,
through the same runner), report export and the cohort job.
"""

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="the module Logic tests need the slicer-core wheel (pip install '.[test]')")

from DELICAITELib import mrml  # noqa: E402
from DELICAITELib.case import REPORT_FILES  # noqa: E402
from DELICAITELib.demo import DEMO_CLINICAL, write_demo_inputs  # noqa: E402
from DELICAITELib.recommendation import RECOMMENDATIONS  # noqa: E402
from DELICAITELib.io import label_volumes_ml, read_image, read_label  # noqa: E402
from DELICAITELib.phantom import make_phantom  # noqa: E402
from DELICAITELib.slices import largest_tumour_slices  # noqa: E402

from slicer_stubs import load_module, run_to_the_end  # noqa: E402


@pytest.fixture(scope="module")
def phantom():
    return make_phantom()


@pytest.fixture()
def phantom_nodes(app, phantom):
    ap = mrml.volume_node_from_image(app.scene, phantom.ap, "phantom AP")
    vp = mrml.volume_node_from_image(app.scene, phantom.vp, "phantom VP")
    truth = mrml.segmentation_node_from_label(app.scene, phantom.label, ap, "phantom truth")
    return ap, vp, truth


def _label(node, volume) -> np.ndarray:
    return sitk.GetArrayFromImage(mrml.label_from_segmentation_node(node, volume))





# ---- DELICAITESegment --------------------------------------------------------------------------------

def test_segment_logic_segments_fixes_undoes_and_picks_slices(app, phantom, phantom_nodes):
    module = load_module("DELICAITESegment")
    logic = module.DELICAITESegmentLogic()
    ap, _, truth = phantom_nodes

    node = logic.segment(ap, None, device="cpu")
    segmentation = node.GetSegmentation()
    assert segmentation.GetSegmentIdBySegmentName("Liver") and segmentation.GetSegmentIdBySegmentName("Tumor")
    found = _label(node, ap)
    reference = sitk.GetArrayViewFromImage(phantom.label) >= 1
    assert 200 < label_volumes_ml(mrml.label_from_segmentation_node(node, ap))["liver_ml"] < 2000
    # a synthetic phantom, not the network's target: most of its liver is found (0.75 with the 2026-12-02 weights)
    assert np.count_nonzero((found >= 1) & reference) / np.count_nonzero(reference) > 0.7

    message = logic.applyCorrection(node, ap, "keep_largest_liver_island")
    assert message.startswith("Kept the largest liver island") and "mL" in message
    islands = sitk.ConnectedComponent(sitk.GetImageFromArray((_label(node, ap) >= 1).astype(np.uint8)))
    assert int(sitk.GetArrayViewFromImage(islands).max()) == 1
    assert logic.canUndo(node)
    logic.undoCorrection(node)
    assert np.array_equal(_label(node, ap), found)
    assert not logic.canUndo(node)
    with pytest.raises(ValueError, match="unknown correction"):
        logic.applyCorrection(node, ap, "make_it_pretty")

    # one click on the lesion (the crosshair, in RAS) grows it into the Tumor segment; undo takes it back
    tumour = sitk.GetArrayViewFromImage(phantom.label) == 2
    z, y, x = (int(round(c)) for c in np.argwhere(tumour).mean(axis=0))
    x += int(round(18.0 / phantom.label.GetSpacing()[0]))  # on the enhancing rim, off the necrotic core
    lx, ly, lz = phantom.label.TransformIndexToPhysicalPoint((x, y, z))
    without = _label(node, ap)
    message = logic.growTumourAt(node, ap, (-lx, -ly, lz))
    assert message.startswith("Grew a tumour from R") and "tumour" in message
    grown = _label(node, ap) == 2
    assert grown[z, y, x] and not (grown & (without == 0)).any()  # from the clicked voxel, inside the liver
    logic.undoCorrection(node)
    assert np.array_equal(_label(node, ap), without)

    markups, positions = logic.pickLargestSlices(ap, truth)
    expected = largest_tumour_slices(phantom.label)
    assert [p["index"] for p in positions] == [s.index for s in expected]
    assert markups.GetNumberOfControlPoints() == 3
    logic.showSlice(ap, positions[0])
    assert app.markups_logic.calls[-1] == ("JumpSlicesToLocation", (*positions[0]["ras"], True))


def test_undo_never_carries_a_fix_into_the_next_case(app, phantom):
    """A fix on one case, the scene closed, the next case loaded into a node with the same ID: undo must
    not write the first case's segmentation (with its tumour) into the second (it did, keyed by node ID)."""
    module = load_module("DELICAITESegment")
    logic = module.DELICAITESegmentLogic()
    ap = mrml.volume_node_from_image(app.scene, phantom.ap, "case A")
    node = mrml.segmentation_node_from_label(app.scene, phantom.label, ap, "case A")
    first_id = node.GetID()
    logic.applyCorrection(node, ap, "fill_liver_holes")
    assert logic.canUndo(node)

    app.scene.Clear(0)  # File > Close Scene; the widget would also call logic.forgetUndo() here
    liver_only = sitk.Clamp(phantom.label, sitk.sitkUInt8, 0, 1)  # case B: no tumour
    ap_b = mrml.volume_node_from_image(app.scene, phantom.ap, "case B")
    node_b = mrml.segmentation_node_from_label(app.scene, liver_only, ap_b, "case B")
    assert node_b.GetID() == first_id  # the scene reuses the ID
    assert not logic.canUndo(node_b)
    with pytest.raises(ValueError, match="no fix to undo"):
        logic.undoCorrection(node_b)
    assert not (_label(node_b, ap_b) == 2).any()

    # an edit after a fix (Segment Editor, a script) makes that fix's undo stale: refused, nothing written
    logic.applyCorrection(node_b, ap_b, "fill_liver_holes")
    edited = _label(node_b, ap_b)
    edited[edited.shape[0] // 2] = 0
    changed = sitk.GetImageFromArray(edited)
    changed.CopyInformation(phantom.label)
    mrml.update_segmentation_node(node_b, changed)
    with pytest.raises(ValueError, match="changed since the last fix"):
        logic.undoCorrection(node_b)
    assert np.array_equal(_label(node_b, ap_b), edited)
    logic.applyCorrection(node_b, ap_b, "fill_liver_holes")
    logic.forgetUndo()  # what the widget does when the scene closes
    assert not logic.canUndo(node_b)


def test_segment_logic_background_process_reports_and_cancels(app, phantom_nodes):
    module = load_module("DELICAITESegment")
    logic = module.DELICAITESegmentLogic()
    ap, _, _ = phantom_nodes
    fractions, done = [], {}
    logic.segmentInBackground(ap, None, "cpu", onProgress=lambda event: fractions.append(event.fraction),
                              onDone=lambda ok, message, node: done.update(ok=ok, message=message, node=node))
    assert logic.isRunning() and logic.runner._timer.active
    run_to_the_end(logic.runner)  # the timer's next tick collects the events and the label
    assert done["ok"], done["message"]
    assert done["message"].startswith("Liver ")
    # the phantom has no lungs: the gate's warning is shown beside the views, not buried in a log
    assert "WARNING: the automatic liver mask is implausible" in done["message"]
    assert not logic.lastReview.plausible and "no lung base" in logic.lastReview.problems[0]
    assert done["node"].GetSegmentation().GetSegmentIdBySegmentName("Tumor")
    steps = [f for f in fractions if f is not None]
    assert steps and steps == sorted(steps) and steps[-1] == 1.0
    assert not logic.isRunning() and not logic.runner._timer.active

    first = done.pop("node")
    before = _label(first, ap)
    done.clear()
    logic.segmentInBackground(ap, first, "cpu",
                              onDone=lambda ok, message, node: done.update(ok=ok, message=message, node=node))
    logic.cancelSegmentation()
    assert done == {"ok": False, "message": module.DELICAITESegmentLogic.CANCELLED, "node": None}
    assert not logic.isRunning()
    assert np.array_equal(_label(first, ap), before)  # a cancelled run leaves the segmentation as it was


# ---- DELICAITERecommend ------------------------------------------------------------------------------

def test_recommend_logic_computes_and_exports_the_report(app, tmp_path):
    module = load_module("DELICAITERecommend")
    logic = module.DELICAITERecommendLogic()
    paths = write_demo_inputs(tmp_path / "inputs")
    ap_image = read_image(paths["ap"])
    ap = mrml.volume_node_from_image(app.scene, ap_image, "AP")
    vp = mrml.volume_node_from_image(app.scene, read_image(paths["vp"]), "VP")
    segmentation = mrml.segmentation_node_from_label(app.scene, read_label(paths["mask"], reference=ap_image), ap)

    with pytest.raises(ValueError, match="compute a recommendation first"):
        logic.exportReport(None, tmp_path / "too-early")
    result, nodes = logic.compute(ap, vp, segmentation, DEMO_CLINICAL, logic.demoModelPath(), tmp_path / "out")
    assert logic.isDemoModel(logic.demoModelPath())
    assert result.recommendation in RECOMMENDATIONS
    assert [s.index for s in result.slices] == [s.index for s in largest_tumour_slices(read_label(paths["mask"]))]
    table = mrml.frame_from_table_node(nodes["result_table"]).set_index("quantity")
    assert table.loc["P(PD | TACE)", "number"] == result.prediction.risk.p_pd_tace
    assert table.loc["why", "value"] == result.prediction.reason
    assert nodes["risk_chart"].GetNumberOfPlotSeriesNodes() == 2

    copies = logic.exportReport(None, tmp_path / "exported")
    assert sorted(p.rsplit("/", 1)[-1] for p in map(str, copies)) == sorted(REPORT_FILES)
    logic.removeResultNodes(nodes)
    assert all(app.scene.GetNodeByID(node.GetID()) is None for node in nodes.values())

    # The panel's path: the same case as `delicaite case` in a background process, the GUI thread free.
    events, done = [], {}
    logic.computeInBackground(ap, vp, segmentation, DEMO_CLINICAL, logic.demoModelPath(), tmp_path / "background",
                              onEvent=events.append, onDone=lambda r, n, failure: done.update(result=r, nodes=n,
                                                                                                failure=failure))
    assert logic.isRunning()
    run_to_the_end(logic.runner)
    assert done["failure"] is None and not logic.isRunning()
    assert done["result"].prediction == result.prediction  # one engine: the same h, to the last digit
    assert [e.fraction for e in events if e.fraction is not None][-1] == 1.0
    assert mrml.frame_from_table_node(done["nodes"]["result_table"]).equals(mrml.frame_from_table_node(
        logic.compute(ap, vp, segmentation, DEMO_CLINICAL, logic.demoModelPath())[1]["result_table"]))

    # A model folder that is no model: the background job fails with the command's one-line reason.
    logic.computeInBackground(ap, vp, segmentation, DEMO_CLINICAL, tmp_path, onDone=lambda r, n, failure:
                              done.update(result=r, nodes=n, failure=failure))
    run_to_the_end(logic.runner)
    assert done["result"] is None and "is not a DELICAITE model folder" in done["failure"]


# ---- DELICAITE hub ----------------------------------------------------------------------------------

def test_hub_logic_walks_the_case_steps(app, phantom, phantom_nodes):
    module = load_module("DELICAITE")
    logic = module.DELICAITELogic()
    ap, vp, truth = phantom_nodes

    def done_steps():
        status = logic.caseStatus(ap, vp, truth)
        return [step for step in module.STEPS if status[step]]

    assert done_steps() == ["phases", "segment"]
    logic.setReviewed(truth, True)
    markups = logic.pickSlices(ap, truth)
    assert markups.GetNumberOfControlPoints() == 3
    assert app.markups_logic.calls[-1] == ("JumpSlicesToNthPointInMarkup", (markups.GetID(), 0, True))
    features = logic.computeFeatures(ap, vp, truth)
    frame = mrml.frame_from_table_node(features)
    assert len(frame) > 10 and frame["feature"].str.startswith(("AP_", "VP_")).all()
    assert np.isfinite(frame["value"]).all()
    assert done_steps() == ["phases", "segment", "correct", "slices", "features"]
    assert logic.recommendationText(truth) == "No recommendation for this case yet."


def test_hub_logic_runs_the_cohort_batch_in_the_background(app, tmp_path):
    module = load_module("DELICAITE")
    cases = tmp_path / "cases"
    paths = write_demo_inputs(cases / "phantom")
    for role in ("ap", "vp", "mask"):
        paths[role].rename(cases / "phantom" / f"{role}.nii.gz")
    logic, events, finished = module.DELICAITELogic(), [], []
    logic.startCohortJob(cases, tmp_path / "out", device="cpu", onEvent=events.append, onDone=finished.append)
    assert logic.isCohortJobRunning()
    run_to_the_end(logic.runner)
    assert finished[0].failure_message() is None and not logic.isCohortJobRunning()
    assert (tmp_path / "out" / "phantom" / "result.json").is_file()
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # typed events: no text to match
    assert any(e.message.startswith("[case 1/1] phantom: done") for e in events)
