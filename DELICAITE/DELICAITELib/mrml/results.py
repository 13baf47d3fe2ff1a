"""A case result (case.result.CaseResult) as MRML table and plot-chart nodes.

Conversion only: the case runs in the case engine, and the Recommend module hands its result here.
Tables keep their column types (float -> vtkDoubleArray, int -> vtkIntArray, text -> vtkStringArray) so
a saved scene reloads with numbers, not strings. Charts read their bars from table nodes, as Slicer's
Plots module expects: chart -> series (PlotTypeBar) -> table column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import vtk

from ..errors import DelicaiteError

if TYPE_CHECKING:  # the case package imports the model bundle (pandas); segmentation needs neither
    import pandas as pd

    from ..case.result import CaseResult
    from ..recommendation import Prediction

# Columns of the result table: what is shown, as text for the reader and as an exact number.
RESULT_COLUMNS = ("quantity", "value", "number")
# (row label, the value of a Prediction, text format); a None format marks a text-only row.
RESULT_ROWS = (
    ("P(PD | TACE)", lambda p: p.risk.p_pd_tace, "{:.3f}"),
    ("P(PD | HAIC)", lambda p: p.risk.p_pd_haic, "{:.3f}"),
    ("interaction score h", lambda p: p.score.h, "{:+.3f}"),
    ("h ensemble spread lower", lambda p: p.score.lower, "{:+.3f}"),
    ("h ensemble spread upper", lambda p: p.score.upper, "{:+.3f}"),
    ("h ensemble spread share", lambda p: p.score.interval_level, "{:.0%}"),
    ("training percentile of h", lambda p: p.score.training_percentile, "{:.1f}"),
    ("recommendation", lambda p: p.recommendation, None),
    ("why", lambda p: p.reason, None),
    ("cutoff c", lambda p: p.cutoff, "{:g}"),
)
RESULT_LABELS = tuple(label for label, _, _ in RESULT_ROWS)
RISK_COLOURS = {"TACE": (0.20, 0.45, 0.75), "HAIC": (0.90, 0.50, 0.15)}


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
    import pandas as pd  # late: Slicer ships no pandas, and segmentation needs none
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
    import pandas as pd  # late: Slicer ships no pandas, and segmentation needs none
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

def _prediction(result: CaseResult) -> Prediction:
    if result.prediction is None:
        raise DelicaiteError("this case result has no recommendation (a slices-only case): nothing to show")
    return result.prediction


def result_frame(result: CaseResult) -> pd.DataFrame:
    """The result rows: quantity, value (text as shown) and number (exact; NaN for text-only rows)."""
    import pandas as pd  # late: Slicer ships no pandas, and segmentation needs none
    prediction = _prediction(result)
    rows = []
    for label, value_of, fmt in RESULT_ROWS:
        value = value_of(prediction)
        if fmt is None:
            rows.append((label, str(value), math.nan))
        else:
            rows.append((label, fmt.format(float(value)), float(value)))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).astype({"number": np.float64})


def result_table_node(scene, result: CaseResult, name: str = "DELICAITE result", node=None):
    """A table node with one row per quantity of ``result`` (see RESULT_ROWS)."""
    return table_node_from_frame(scene, result_frame(result), name, node)


def drivers_frame(result: CaseResult) -> pd.DataFrame:
    """The features that move h most for this patient, with their signed contributions."""
    import pandas as pd  # late: Slicer ships no pandas, and segmentation needs none
    drivers = _prediction(result).drivers
    return pd.DataFrame({
        "feature": pd.Series([d.feature for d in drivers], dtype=object),
        "contribution": pd.Series([d.contribution for d in drivers], dtype=np.float64),
    })


def drivers_table_node(scene, result: CaseResult, name: str = "DELICAITE drivers", node=None):
    return table_node_from_frame(scene, drivers_frame(result), name, node)


def risks_frame(result: CaseResult) -> pd.DataFrame:
    """One row: the two risks side by side, one column per therapy (one bar series each)."""
    import pandas as pd  # late: Slicer ships no pandas, and segmentation needs none
    risk = _prediction(result).risk
    return pd.DataFrame({"case": pd.Series(["this patient"], dtype=object), "TACE": [risk.p_pd_tace],
                         "HAIC": [risk.p_pd_haic]})


# --- charts ---------------------------------------------------------------------------------------------

def _bar_series(scene, name: str, table_node, y_column: str, label_column: str, colour):
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", name)
    series.SetAndObserveTableNodeID(table_node.GetID())
    series.SetPlotType(series.PlotTypeBar)  # bars need only Y; they stand side by side in order
    series.SetYColumnName(y_column)
    series.SetLabelColumnName(label_column)
    series.SetColor(*colour)
    return series


def risk_chart_node(scene, result: CaseResult, name: str = "DELICAITE risks"):
    """A bar chart of P(PD | TACE) and P(PD | HAIC): one series per therapy, reading one table node."""
    table = table_node_from_frame(scene, risks_frame(result), f"{name} table")
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", name)
    for therapy in ("TACE", "HAIC"):
        series = _bar_series(scene, therapy, table, therapy, "case", RISK_COLOURS[therapy])
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle(f"Risk of progression: recommendation {result.recommendation}")
    chart.SetXAxisTitle("therapy")
    chart.SetYAxisTitle("P(progression)")
    chart.SetYAxisRangeAuto(False)
    chart.SetYAxisRange(0.0, 1.0)
    chart.SetLegendVisibility(True)
    return chart


def drivers_chart_node(scene, result: CaseResult, name: str = "DELICAITE drivers chart", table_node=None):
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


# --- every node of a result ---------------------------------------------------------------------------

def result_nodes(scene, result: CaseResult) -> dict:
    """The result's table and chart nodes in ``scene``: {"result_table", "drivers_table", "risk_chart",
    "risk_table", "drivers_chart"} (remove them with `remove_result_nodes`)."""
    drivers_table = drivers_table_node(scene, result)
    risk_chart = risk_chart_node(scene, result)
    return {
        "result_table": result_table_node(scene, result),
        "drivers_table": drivers_table,
        "risk_chart": risk_chart,
        "risk_table": chart_table_nodes(risk_chart)[0],
        "drivers_chart": drivers_chart_node(scene, result, table_node=drivers_table),
    }


def remove_result_nodes(nodes: Mapping) -> None:
    """Remove nodes made by `result_nodes` (and the charts' series) from their scene."""
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
