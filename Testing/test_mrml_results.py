"""Result tables and charts as MRML nodes, and a case read from nodes into the case engine (slicer-core, no
application): the nodes give the same case as the files, and the tables hold the typed result exactly."""

import json
import math

import numpy as np
import pandas as pd
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML wheel) is not installed")

from DELICAITELib import mrml  # noqa: E402
from DELICAITELib.case import CaseEngine, CaseResult, run_case, write_case_outputs  # noqa: E402
from DELICAITELib.demo import DEMO_CLINICAL, demo_model_dir, write_demo_inputs  # noqa: E402
from DELICAITELib.errors import DelicaiteError  # noqa: E402
from DELICAITELib.io import read_image, read_label  # noqa: E402
from DELICAITELib.mrml.results import (  # noqa: E402
    RESULT_ROWS,
    drivers_chart_node,
    drivers_table_node,
    frame_from_table_node,
    result_table_node,
    risk_chart_node,
    table_node_from_frame,
)


def run_on_nodes(ap_node, vp_node, segmentation, out):
    """What the Recommend Logic does: images from the nodes, the case engine, result nodes."""
    images = mrml.images_from_case_nodes(ap_node, vp_node, segmentation)
    engine = CaseEngine.for_model(demo_model_dir())
    events = []
    run = engine.run(images.ap, images.vp, images.label, DEMO_CLINICAL, events.append)
    write_case_outputs(run, out, engine.bundle.training_h)
    return run.result, mrml.result_nodes(ap_node.GetScene(), run.result), events


@pytest.fixture(scope="module")
def demo_case(tmp_path_factory):
    """The phantom case run from its files (reference) and from nodes in a fresh scene."""
    root = tmp_path_factory.mktemp("demo")
    paths = write_demo_inputs(root / "inputs")
    from_files = run_case(paths["ap"], paths["vp"], paths["mask"], DEMO_CLINICAL, demo_model_dir(), root / "files")
    scene = mrml.new_scene()
    ap_node = mrml.volume_node_from_image(scene, read_image(paths["ap"]), "AP")
    vp_node = mrml.volume_node_from_image(scene, read_image(paths["vp"]), "VP")
    label = read_label(paths["mask"], reference=read_image(paths["ap"]))
    segmentation = mrml.segmentation_node_from_label(scene, label, ap_node, "Segmentation")
    result, nodes, events = run_on_nodes(ap_node, vp_node, segmentation, root / "nodes")
    return {"scene": scene, "files": from_files, "result": result, "nodes": nodes, "root": root,
            "events": events, "json": json.loads((root / "nodes" / "result.json").read_text())}


def test_nodes_give_the_same_case_as_files(demo_case):
    files, result = demo_case["files"].prediction, demo_case["result"].prediction
    assert result.recommendation == files.recommendation
    assert result.risk.p_pd_tace == pytest.approx(files.risk.p_pd_tace, abs=1e-12)
    assert result.score.h == pytest.approx(files.score.h, abs=1e-12)
    assert demo_case["result"].slices == demo_case["files"].slices
    assert [e.message.split()[0] for e in demo_case["events"] if e.message.startswith("[")] == \
        ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]  # progress went through, as typed events
    assert demo_case["events"][-1].fraction == 1.0
    for name in ("result.json", "report.png", "report.html"):
        assert (demo_case["root"] / "nodes" / name).is_file()
    assert CaseResult.read(demo_case["root"] / "nodes" / "result.json").prediction == result


def test_case_nodes_are_checked_before_anything_runs(demo_case):
    scene = demo_case["scene"]
    ap_node = scene.GetFirstNodeByName("AP")
    segmentation = scene.GetFirstNodeByName("Segmentation")
    with pytest.raises(DelicaiteError, match="arterial-phase"):
        mrml.images_from_case_nodes(None, None, segmentation)
    with pytest.raises(DelicaiteError, match="Liver and Tumor"):
        mrml.images_from_case_nodes(ap_node, None, None)
    elsewhere = mrml.new_scene()
    label = mrml.label_from_segmentation_node(segmentation, ap_node)
    other_ap = mrml.volume_node_from_image(elsewhere, mrml.image_from_volume_node(ap_node), "AP")
    with pytest.raises(DelicaiteError, match="same scene"):
        mrml.images_from_case_nodes(ap_node, None, mrml.segmentation_node_from_label(elsewhere, label, other_ap))
    assert mrml.images_from_case_nodes(ap_node, ap_node, segmentation).vp is None  # the AP twice: single phase


def test_result_table_rows_equal_result_json(demo_case):
    table = demo_case["nodes"]["result_table"]
    assert table.IsA("vtkMRMLTableNode") and table.GetScene() is demo_case["scene"]
    df = frame_from_table_node(table)
    assert list(df.columns) == ["quantity", "value", "number"]
    assert df["number"].dtype == np.float64 and df["quantity"].dtype == object
    assert list(df["quantity"]) == [label for label, _, _ in RESULT_ROWS]
    by_row = df.set_index("quantity")
    saved = CaseResult.from_json(demo_case["json"]).prediction  # what result.json holds, read back
    for label, value_of, fmt in RESULT_ROWS:
        if fmt is None:
            assert by_row.loc[label, "value"] == value_of(saved)
            assert math.isnan(by_row.loc[label, "number"])
        else:
            assert by_row.loc[label, "number"] == value_of(saved)  # exact, not rounded
    assert by_row.loc["why", "value"] == demo_case["json"]["recommendation_reason"]
    assert by_row.loc["recommendation", "value"] in ("TACE", "HAIC", "no clear preference")
    lower, h, upper = (by_row.loc[k, "number"] for k in ("h ensemble spread lower", "interaction score h", "h ensemble spread upper"))
    assert lower <= h <= upper


def test_drivers_table(demo_case):
    df = frame_from_table_node(demo_case["nodes"]["drivers_table"])
    saved = demo_case["json"]["drivers"]
    assert list(df["feature"]) == [d["feature"] for d in saved]
    assert list(df["contribution"]) == [d["contribution"] for d in saved]


def test_risk_chart_reads_the_two_risks_from_a_table(demo_case):
    chart, saved = demo_case["nodes"]["risk_chart"], demo_case["json"]
    assert chart.IsA("vtkMRMLPlotChartNode")
    assert chart.GetYAxisTitle() == "P(progression)"
    assert not chart.GetYAxisRangeAuto() and tuple(chart.GetYAxisRange()) == (0.0, 1.0)
    assert saved["recommendation"] in chart.GetTitle()
    series = [chart.GetNthPlotSeriesNode(i) for i in range(chart.GetNumberOfPlotSeriesNodes())]
    assert [s.GetName() for s in series] == ["TACE", "HAIC"]
    table = demo_case["nodes"]["risk_table"]
    df = frame_from_table_node(table)
    for s, key in zip(series, ("p_pd_tace", "p_pd_haic")):
        assert s.GetPlotType() == s.PlotTypeBar
        assert s.GetTableNode() is table
        assert df[s.GetYColumnName()].tolist() == [saved["risk"][key]]
        assert s.GetLabelColumnName() in df.columns


def test_drivers_chart_reads_the_drivers_table(demo_case):
    chart = demo_case["nodes"]["drivers_chart"]
    assert chart.GetNumberOfPlotSeriesNodes() == 1
    series = chart.GetNthPlotSeriesNode(0)
    assert series.GetPlotType() == series.PlotTypeBar
    assert series.GetTableNode() is demo_case["nodes"]["drivers_table"]
    assert (series.GetYColumnName(), series.GetLabelColumnName()) == ("contribution", "feature")


def test_frame_round_trip_keeps_types_and_refills_a_node():
    scene = mrml.new_scene()
    df = pd.DataFrame({"name": ["a", "b", "c"], "x": [0.5, -1.25, 1e-12], "n": [1, 2, 3]})
    node = table_node_from_frame(scene, df, "t")
    back = frame_from_table_node(node)
    pd.testing.assert_frame_equal(back, df.astype({"n": np.int64}))
    assert node.GetTable().GetColumnByName("x").IsA("vtkDoubleArray")
    assert node.GetTable().GetColumnByName("name").IsA("vtkStringArray")
    smaller = pd.DataFrame({"y": [3.0]})
    assert table_node_from_frame(scene, smaller, "t", node=node) is node
    pd.testing.assert_frame_equal(frame_from_table_node(node), smaller)


def test_saved_scene_reloads_with_tables_and_charts(tmp_path):
    result = CaseResult.from_json(_small_result())
    scene = mrml.new_scene()
    result_table_node(scene, result)
    drivers_table_node(scene, result)
    risk_chart_node(scene, result)
    drivers_chart_node(scene, result)
    path = mrml.save_scene(scene, tmp_path / "scene" / "case.mrml")
    reloaded = mrml.load_scene(path)
    df = frame_from_table_node(reloaded.GetFirstNodeByName("DELICAITE result"))
    expected = frame_from_table_node(scene.GetFirstNodeByName("DELICAITE result"))
    assert list(df["quantity"]) == list(expected["quantity"]) and list(df["value"]) == list(expected["value"])
    # the table file keeps 6 significant digits
    np.testing.assert_allclose(df["number"], expected["number"], rtol=1e-5, equal_nan=True)
    chart = reloaded.GetFirstNodeByName("DELICAITE risks")
    assert chart.GetNumberOfPlotSeriesNodes() == 2
    risks = frame_from_table_node(chart.GetNthPlotSeriesNode(1).GetTableNode())
    assert risks["HAIC"].tolist() == pytest.approx([result.prediction.risk.p_pd_haic], rel=1e-5)


def _small_result():
    return {
        "kind": "full_case", "slices": [{"index": 12, "area_mm2": 410.0}],
        "risk": {"p_pd_tace": 0.61, "p_pd_haic": 0.42},
        "interaction_score": {"h": -0.77, "lower": -1.1, "upper": -0.4, "interval_level": 0.9,
                              "training_percentile": 31.5},
        "recommendation": "HAIC", "cutoff": 0.0,
        "drivers": [{"feature": "pvtt", "contribution": -0.5}, {"feature": "afp_ge_400", "contribution": 0.2}],
    }


def test_ircadb17_on_nodes_as_both_phases(ircadb17_image, ircadb17_label, ircadb17_independent_largest, tmp_path):
    scene = mrml.new_scene()
    ct_node = mrml.volume_node_from_image(scene, ircadb17_image, "CT")
    segmentation = mrml.segmentation_node_from_label(scene, ircadb17_label, ct_node, "Segmentation")
    result, nodes, _ = run_on_nodes(ct_node, ct_node, segmentation, tmp_path)
    assert [s.index for s in result.slices] == [97, 96, 95]
    assert [s.index for s in result.slices] == [i for _, i in ircadb17_independent_largest]
    assert result.single_phase is True
    p = result.prediction.risk
    assert 0 < p.p_pd_tace < 1 and 0 < p.p_pd_haic < 1
    table = frame_from_table_node(nodes["result_table"]).set_index("quantity")
    assert table.loc["recommendation", "value"] == result.recommendation
