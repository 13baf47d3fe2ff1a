"""A case result (result.json's content) as MRML table and plot-chart nodes, and a whole case run on nodes.

Tables keep their column types (float -> vtkDoubleArray, int -> vtkIntArray, text -> vtkStringArray) so
a saved scene reloads with numbers, not strings. Charts read their bars from table nodes, as Slicer's
Plots module expects: chart -> series (PlotTypeBar) -> table column.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import vtk

from ..errors import DelicaiteError
from .segmentations import label_from_segmentation_node
from .volumes import image_from_volume_node

# Columns of the result table: what is shown, as text for the reader and as an exact number.
RESULT_COLUMNS = ("quantity", "value", "number")
# (row label, path into result.json, text format); a None format marks a text-only row.
RESULT_ROWS = (
    ("P(PD | TACE)", ("risk", "p_pd_tace"), "{:.3f}"),
    ("P(PD | HAIC)", ("risk", "p_pd_haic"), "{:.3f}"),
    ("interaction score h", ("interaction_score", "h"), "{:+.3f}"),
    ("h interval lower", ("interaction_score", "lower"), "{:+.3f}"),
    ("h interval upper", ("interaction_score", "upper"), "{:+.3f}"),
    ("h interval level", ("interaction_score", "interval_level"), "{:.0%}"),
    ("training percentile of h", ("interaction_score", "training_percentile"), "{:.1f}"),
    ("recommendation", ("recommendation",), None),
    ("cutoff c", ("cutoff",), "{:g}"),
)
RISK_COLOURS = {"TACE": (0.20, 0.45, 0.75), "HAIC": (0.90, 0.50, 0.15)}

Progress = Callable[[str], None]


# --- tables <-> pandas -------------------------------------------------------------------------------

def table_node_from_frame(scene, df: pd.DataFrame, name: str, node=None):
    """A table node (new, or ``node`` refilled) holding ``df``'s columns with their types."""
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = vtk.vtkTable()
    for column in df.columns:
        table.AddColumn(_vtk_array(str(column), df[column]))
    node.SetAndObserveTable(table)
    return node


def frame_from_table_node(node) -> pd.DataFrame:
    """The table of ``node`` as a DataFrame (double -> float64, integer -> int64, string -> object)."""
    table = node.GetTable()
    columns = {}
    for i in range(table.GetNumberOfColumns()):
        array = table.GetColumn(i)
        n = array.GetNumberOfTuples()
        if isinstance(array, vtk.vtkStringArray):
            columns[array.GetName()] = pd.Series([array.GetValue(k) for k in range(n)], dtype=object)
        elif isinstance(array, (vtk.vtkFloatArray, vtk.vtkDoubleArray)):
            columns[array.GetName()] = pd.Series([array.GetValue(k) for k in range(n)], dtype=np.float64)
        elif isinstance(array, vtk.vtkDataArray):
            columns[array.GetName()] = pd.Series([int(array.GetTuple1(k)) for k in range(n)], dtype=np.int64)
        else:
            raise DelicaiteError(f"table {node.GetName()!r}: column {array.GetName()!r} has the unsupported "
                                 f"type {array.GetClassName()}")
    return pd.DataFrame(columns)


def _vtk_array(name: str, series: pd.Series):
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        array = vtk.vtkIntArray()
        values = [int(v) for v in series]
    elif pd.api.types.is_float_dtype(series):
        array = vtk.vtkDoubleArray()
        values = [float(v) for v in series]
    else:  # text (object / string dtype); a missing entry becomes ""
        array = vtk.vtkStringArray()
        values = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in series]
    array.SetName(name)
    array.SetNumberOfValues(len(values))
    for i, v in enumerate(values):
        array.SetValue(i, v)
    return array


# --- result tables --------------------------------------------------------------------------------------

def result_frame(result: Mapping) -> pd.DataFrame:
    """The result rows: quantity, value (text as shown) and number (exact; NaN for text-only rows)."""
    rows = []
    for label, path, fmt in RESULT_ROWS:
        value = result
        for key in path:
            value = value[key]
        if fmt is None:
            rows.append((label, str(value), math.nan))
        else:
            rows.append((label, fmt.format(float(value)), float(value)))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).astype({"number": np.float64})


def result_table_node(scene, result: Mapping, name: str = "DELICAITE result", node=None):
    """A table node with one row per quantity of ``result`` (see RESULT_ROWS)."""
    return table_node_from_frame(scene, result_frame(result), name, node)


def drivers_frame(result: Mapping) -> pd.DataFrame:
    """The features that move h most for this patient, with their signed contributions."""
    drivers = result.get("drivers", [])
    return pd.DataFrame({
        "feature": pd.Series([d["feature"] for d in drivers], dtype=object),
        "contribution": pd.Series([float(d["contribution"]) for d in drivers], dtype=np.float64),
    })


def drivers_table_node(scene, result: Mapping, name: str = "DELICAITE drivers", node=None):
    return table_node_from_frame(scene, drivers_frame(result), name, node)


def risks_frame(result: Mapping) -> pd.DataFrame:
    """One row: the two risks side by side, one column per therapy (one bar series each)."""
    return pd.DataFrame({
        "case": pd.Series(["this patient"], dtype=object),
        "TACE": [float(result["risk"]["p_pd_tace"])],
        "HAIC": [float(result["risk"]["p_pd_haic"])],
    })


# --- charts ---------------------------------------------------------------------------------------------

def _bar_series(scene, name: str, table_node, y_column: str, label_column: str, colour):
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", name)
    series.SetAndObserveTableNodeID(table_node.GetID())
    series.SetPlotType(series.PlotTypeBar)  # bars need only Y; they stand side by side in order
    series.SetYColumnName(y_column)
    series.SetLabelColumnName(label_column)
    series.SetColor(*colour)
    return series


def risk_chart_node(scene, result: Mapping, name: str = "DELICAITE risks"):
    """A bar chart of P(PD | TACE) and P(PD | HAIC): one series per therapy, reading one table node."""
    table = table_node_from_frame(scene, risks_frame(result), f"{name} table")
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", name)
    for therapy in ("TACE", "HAIC"):
        series = _bar_series(scene, therapy, table, therapy, "case", RISK_COLOURS[therapy])
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle(f"Risk of progression: recommendation {result['recommendation']}")
    chart.SetXAxisTitle("therapy")
    chart.SetYAxisTitle("P(progression)")
    chart.SetYAxisRangeAuto(False)
    chart.SetYAxisRange(0.0, 1.0)
    chart.SetLegendVisibility(True)
    return chart


def drivers_chart_node(scene, result: Mapping, name: str = "DELICAITE drivers chart", table_node=None):
    """A bar chart of the drivers' contributions to h (negative favours HAIC, positive favours TACE)."""
    table = table_node if table_node is not None else drivers_table_node(scene, result, f"{name} table")
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", name)
    series = _bar_series(scene, "contribution to h", table, "contribution", "feature", (0.35, 0.35, 0.35))
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle("Drivers of h (< 0: HAIC, > 0: TACE)")
    chart.SetXAxisTitle("feature")
    chart.SetYAxisTitle("contribution to h")
    chart.SetLegendVisibility(False)
    return chart


def chart_table_nodes(chart) -> list:
    """The distinct table nodes a chart's series read, in series order."""
    tables = []
    for i in range(chart.GetNumberOfPlotSeriesNodes()):
        table = chart.GetNthPlotSeriesNode(i).GetTableNode()
        if table is not None and table not in tables:
            tables.append(table)
    return tables


# --- a whole case on nodes --------------------------------------------------------------------------------

def recommend_from_nodes(ap_node, vp_node, segmentation_node, clinical: Mapping, model_path, out_dir=None,
                         progress: Progress | None = None) -> tuple[dict, dict]:
    """Run the case on volume and segmentation nodes; add result tables and charts to their scene.

    ``vp_node`` may be None or ``ap_node`` itself for single-phase data. The label map is taken on the
    AP grid. Returns (result dict as in result.json, {"result_table", "drivers_table", "risk_chart",
    "drivers_chart", "risk_table"} nodes); result.json, report.png and report.html go to ``out_dir``
    (a new temporary folder when None).
    """
    from ..workflow import run_case

    say = progress or (lambda message: None)
    if ap_node is None:
        raise DelicaiteError("select the arterial-phase (AP) volume")
    if segmentation_node is None:
        raise DelicaiteError("select a segmentation with Liver and Tumor segments (or auto-segment first)")
    scene = ap_node.GetScene()
    if scene is None or segmentation_node.GetScene() is not scene:
        raise DelicaiteError("the AP volume and the segmentation must be nodes of the same scene")
    say("reading the volumes and the segmentation from the scene")
    ap = image_from_volume_node(ap_node)
    single_phase = vp_node is None or vp_node is ap_node
    vp = ap if single_phase else image_from_volume_node(vp_node)  # the same object marks single phase
    label = label_from_segmentation_node(segmentation_node, ap_node)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="DELICAITE-recommend-"))
    result = run_case(ap, vp, label, clinical, model_path, out, progress=say)
    say("adding the result tables and charts to the scene")
    drivers_table = drivers_table_node(scene, result)
    risk_chart = risk_chart_node(scene, result)
    nodes = {
        "result_table": result_table_node(scene, result),
        "drivers_table": drivers_table,
        "risk_chart": risk_chart,
        "risk_table": chart_table_nodes(risk_chart)[0],
        "drivers_chart": drivers_chart_node(scene, result, table_node=drivers_table),
    }
    return result, nodes


def remove_result_nodes(nodes: Mapping) -> None:
    """Remove nodes made by `recommend_from_nodes` (and the charts' series) from their scene."""
    for node in nodes.values():
        scene = node.GetScene() if node is not None else None
        if scene is None:
            continue
        if node.IsA("vtkMRMLPlotChartNode"):
            for i in reversed(range(node.GetNumberOfPlotSeriesNodes())):
                series = node.GetNthPlotSeriesNode(i)
                if series is not None:
                    scene.RemoveNode(series)
        scene.RemoveNode(node)
