"""Offscreen pictures of what the DELICAITE panel shows beside the volume: a slice view and a chart.

Both are drawn from the real MRML nodes with Slicer's own machinery, without Qt: the slice view uses
vtkMRMLSliceLogic (reslice + the volume display node's window/level) and the 2D displayable managers
(segmentation fill and outline, markups) on an offscreen VTK renderer, exactly as a Slicer slice view
composes them; the chart reads a vtkMRMLPlotChartNode the way Slicer's plot view does (vtkChartXY).
Works with the `slicer-core` wheel (VTK picks X, EGL or OSMesa offscreen) and inside the application.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from ..errors import DelicaiteError, ImageError

ORIENTATIONS = ("Axial", "Sagittal", "Coronal")
_SLICE_DISPLAYABLE_MANAGERS = ("vtkMRMLSegmentationsDisplayableManager2D", "vtkMRMLMarkupsDisplayableManager")
_OVERLAY_CLASSES = ("vtkMRMLSegmentationNode", "vtkMRMLMarkupsNode")
_view_names = itertools.count(1)
_window_class: list[str] = []  # the render window class VTK chose the first time (see _render_window)


# --- public ------------------------------------------------------------------------------------------

def can_render_offscreen(timeout: float = 120) -> tuple[bool, str]:
    """(True, window class) when an offscreen OpenGL context renders here, else (False, why).

    Probed in a separate Python process: where no OpenGL driver works VTK crashes instead of raising
    (SupportsOpenGL() still answers yes). Raises RuntimeError when the probe itself is broken.
    """
    try:
        run = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"the offscreen OpenGL probe hung for {timeout:.0f} s"
    answer = run.stdout.strip().splitlines()[-1:] or [""]
    if run.returncode in (0, 3):
        return run.returncode == 0, answer[0]
    if run.returncode < 0:  # what VTK said last before dying, without colours and log prefixes
        said = [_ANSI.sub("", line).split("| ", 1)[-1][:160] for line in run.stderr.splitlines() if line.strip()]
        return False, f"the OpenGL probe crashed (signal {-run.returncode}): " + " | ".join(said[-2:])
    raise RuntimeError(f"the offscreen OpenGL probe failed:\n{run.stdout}{run.stderr}")


# Renders a red 8x8 window and reads it back; exit 0 = works, 3 = rendered nothing; a crash = no driver.
_PROBE = """
import vtk
window = vtk.vtkRenderWindow()
window.SetOffScreenRendering(True)
window.SetSize(8, 8)
renderer = vtk.vtkRenderer()
renderer.SetBackground(1.0, 0.0, 0.0)
window.AddRenderer(renderer)
window.Render()
grab = vtk.vtkWindowToImageFilter()
grab.SetInput(window)
grab.ReadFrontBufferOff()
grab.Update()
red = grab.GetOutput().GetScalarComponentAsDouble(4, 4, 0, 0)
green = grab.GetOutput().GetScalarComponentAsDouble(4, 4, 0, 1)
print(window.GetClassName() if red > 200 and green < 50 else window.GetClassName() + " rendered no picture")
raise SystemExit(0 if red > 200 and green < 50 else 3)
"""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def render_slice_view(volume_node, segmentation_node=None, *, orientation: str = "Axial", slice_offset=None,
                      size=(512, 512), path=None, markups_node=None):
    """Draw the slice view of ``volume_node`` (+ segmentation and markups overlays) offscreen.

    ``slice_offset`` is the position (mm, RAS) along the slice normal, e.g. the axial z of a tumour
    slice; None shows the middle of the volume. The slice is fitted to the volume, anterior up and
    patient right on image left, as in Slicer's red view. Only the given segmentation and markups
    nodes are drawn (others in the scene are hidden while drawing, then restored). Returns ``path``
    (a PNG is written) or, when ``path`` is None, the picture as an (height, width, 3) uint8 array.
    """
    scene = _check_volume(volume_node)
    overlays = [n for n in (segmentation_node, markups_node) if n is not None]
    for node in overlays:
        if node.GetScene() is not scene:
            raise DelicaiteError(f"{node.GetName()!r} is not in the scene of volume {volume_node.GetName()!r}")
    if orientation not in ORIENTATIONS:
        raise DelicaiteError(f"orientation must be one of {', '.join(ORIENTATIONS)}, not {orientation!r}")
    width, height = _check_size(size)

    existing = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
    window, renderer = _render_window((width, height))
    image_renderer = _under_layer(window, renderer)
    app_logic, own_logics = _application_logic(scene, markups=markups_node is not None)
    slice_logic = group = None
    try:
        with _only_overlays_shown(scene, overlays):
            group = _displayable_managers(app_logic, renderer, markups=markups_node is not None)
            slice_logic = slicer.vtkMRMLSliceLogic()
            slice_logic.SetMRMLApplicationLogic(app_logic)
            slice_logic.SetMRMLScene(scene)
            slice_node = slice_logic.AddSliceNode(f"DelicaiteOffscreen{next(_view_names)}")
            _set_orientation(slice_node, orientation)
            composite = slice_logic.GetSliceCompositeNode()
            composite.SetDoPropagateVolumeSelection(False)
            composite.SetBackgroundVolumeID(volume_node.GetID())
            slice_logic.ResizeSliceNode(width, height)
            slice_logic.FitSliceToAll()
            if slice_offset is not None:
                _check_offset(slice_logic, float(slice_offset), volume_node)
                slice_logic.SetSliceOffset(float(slice_offset))
            group.SetMRMLDisplayableNode(slice_node)
            image_renderer.AddViewProp(_slice_image_actor(slice_logic))
            window.Render()
            pixels = _capture(window)
            group.SetMRMLDisplayableNode(None)  # detach before the overlays' visibility is restored
    finally:
        if slice_logic is not None:
            slice_logic.SetMRMLScene(None)
        for logic in own_logics:
            logic.SetMRMLScene(None)
        _remove_nodes_added_since(scene, existing)
        window.Finalize()
    return _output(pixels, path)


def render_chart(chart_node, *, size=(640, 400), path=None):
    """Draw ``chart_node`` (a vtkMRMLPlotChartNode) as Slicer's plot view shows it.

    Each referenced plot series (bar, line, scatter) reads its table node's X / Y columns with its
    colour and name; the chart's title, axis titles, fixed axis ranges and legend are applied. Bars
    of a series with a label column get those labels under them. Returns ``path`` or an RGB array.
    """
    if chart_node is None or not chart_node.IsA("vtkMRMLPlotChartNode"):
        raise DelicaiteError("select a plot chart node to render")
    series_nodes = [chart_node.GetNthPlotSeriesNode(i) for i in range(chart_node.GetNumberOfPlotSeriesNodes())]
    series_nodes = [s for s in series_nodes if s is not None]
    if not series_nodes:
        raise DelicaiteError(f"chart {chart_node.GetName()!r} has no plot series to draw")
    width, height = _check_size(size)

    chart = vtk.vtkChartXY()
    labels = None
    for series in series_nodes:
        plot, series_labels = _plot_from_series(series)
        chart.AddPlot(plot)
        labels = labels or series_labels
    _style_chart(chart, chart_node, labels)

    window, renderer = _render_window((width, height))
    renderer.SetBackground(1.0, 1.0, 1.0)
    context_scene = vtk.vtkContextScene()
    context_scene.AddItem(chart)
    actor = vtk.vtkContextActor()
    actor.SetScene(context_scene)
    renderer.AddActor(actor)
    context_scene.SetRenderer(renderer)
    try:
        window.Render()
        pixels = _capture(window)
    finally:
        window.Finalize()
    return _output(pixels, path)


# --- slice view --------------------------------------------------------------------------------------

def _check_volume(volume_node):
    if volume_node is None or not volume_node.IsA("vtkMRMLScalarVolumeNode"):
        raise ImageError("select a scalar volume (the CT) to render")
    if volume_node.GetImageData() is None:
        raise ImageError(f"volume {volume_node.GetName()!r} holds no image; load the CT first")
    if volume_node.GetScene() is None:
        raise ImageError(f"volume {volume_node.GetName()!r} is not in a scene")
    if volume_node.GetDisplayNode() is None:
        volume_node.CreateDefaultDisplayNodes()
    return volume_node.GetScene()


def _application_logic(scene, markups: bool):
    """The application logic serving ``scene`` (Slicer's own inside the app), else a private one.

    Returns (logic, logics to detach afterwards). Markups need the Markups module logic registered.
    """
    own = slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance().GetMRMLApplicationLogic()
    if own is not None and own.GetMRMLScene() is scene:
        return own, []
    with _vtk_warnings_off():  # the logics re-register node classes new_scene() registered already
        app_logic = slicer.vtkMRMLApplicationLogic()
        app_logic.SetMRMLScene(scene)
        detach = [app_logic]
        if markups:
            markups_logic = slicer.vtkSlicerMarkupsLogic()
            markups_logic.SetMRMLApplicationLogic(app_logic)
            markups_logic.SetMRMLScene(scene)
            app_logic.SetModuleLogic("Markups", markups_logic)
            detach.insert(0, markups_logic)
    return app_logic, detach


def _displayable_managers(app_logic, renderer, markups: bool):
    """Slicer's 2D displayable managers for the overlays, from a private factory (the singleton stays)."""
    factory = slicer.vtkMRMLDisplayableManagerFactory()
    factory.SetMRMLApplicationLogic(app_logic)
    names = _SLICE_DISPLAYABLE_MANAGERS if markups else _SLICE_DISPLAYABLE_MANAGERS[:1]
    for name in names:
        factory.RegisterDisplayableManager(name)
    group = slicer.vtkMRMLDisplayableManagerGroup()  # (InstantiateDisplayableManagers' would leak)
    group.Initialize(factory, renderer)
    if group.GetDisplayableManagerCount() != len(names):
        raise DelicaiteError("Slicer's slice displayable managers could not be created")
    return group


def _set_orientation(slice_node, orientation: str) -> None:
    """Axial / Sagittal / Coronal with patient right on screen left (the presets the app adds)."""
    if not slice_node.HasSliceOrientationPreset(orientation):
        matrix = vtk.vtkMatrix3x3()
        getattr(slicer.vtkMRMLSliceNode, f"Get{orientation}SliceToRASMatrix")(matrix, True)
        slice_node.AddSliceOrientationPreset(orientation, matrix)
    if not slice_node.SetOrientation(orientation):
        raise DelicaiteError(f"could not orient the slice view {orientation}")


def _check_offset(slice_logic, offset: float, volume_node) -> None:
    bounds, resolution = [0.0, 0.0], vtk.reference(0.0)
    if not slice_logic.GetSliceOffsetRangeResolution(bounds, resolution):
        return
    half = float(resolution) / 2
    if not bounds[0] - half <= offset <= bounds[1] + half:
        raise DelicaiteError(f"slice offset {offset:.1f} mm lies outside volume {volume_node.GetName()!r} "
                             f"({bounds[0]:.1f} to {bounds[1]:.1f} mm along the slice normal)")


def _under_layer(window, renderer):
    """A renderer drawn under ``renderer`` for the slice image, so the overlays blend over the CT.

    As in the application, where CTK's light-box renderer manager draws the image in its own layer;
    in one renderer the segmentation fill would blend with black instead of the CT.
    """
    under = vtk.vtkRenderer()
    under.SetLayer(0)
    renderer.SetLayer(1)
    window.SetNumberOfLayers(2)
    window.AddRenderer(under)
    return under


def _slice_image_actor(slice_logic):
    """The resliced, window/levelled background volume (RGBA 0..255) as a 2D actor.

    In the application CTK's light-box renderer manager shows this image; it is not wrapped for Python.
    """
    mapper = vtk.vtkImageMapper()
    mapper.SetInputConnection(slice_logic.GetImageDataConnection())
    mapper.SetColorWindow(255)
    mapper.SetColorLevel(127.5)
    actor = vtk.vtkActor2D()
    actor.SetMapper(mapper)
    actor.GetProperty().SetDisplayLocationToBackground()
    return actor


@contextmanager
def _only_overlays_shown(scene, shown):
    """Show the display nodes of ``shown`` and hide those of other segmentations / markups; restore."""
    saved = []
    for class_name in _OVERLAY_CLASSES:
        collection = scene.GetNodesByClass(class_name)
        for node in (collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())):
            visible = any(node is s for s in shown)
            for k in range(node.GetNumberOfDisplayNodes()):
                display = node.GetNthDisplayNode(k)
                if display is None:
                    continue
                saved.append((display, display.GetVisibility(), display.GetVisibility2D()))
                display.SetVisibility(visible)
                display.SetVisibility2D(visible)
    try:
        yield
    finally:
        for display, visibility, visibility_2d in saved:
            display.SetVisibility(visibility)
            display.SetVisibility2D(visibility_2d)


def _remove_nodes_added_since(scene, existing: set) -> None:
    """Remove the slice, composite, slice-model and singleton nodes the drawing added to ``scene``."""
    added = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
    for node in reversed([n for n in added if n.GetID() not in existing]):
        if scene.IsNodePresent(node):
            scene.RemoveNode(node)


# --- chart -------------------------------------------------------------------------------------------

def _plot_from_series(series):
    """A vtkPlot for one vtkMRMLPlotSeriesNode (as qMRMLPlotView builds it) and its bar labels."""
    table_node = series.GetTableNode()
    name = series.GetName() or "series"
    if table_node is None or table_node.GetTable() is None:
        raise DelicaiteError(f"plot series {name!r} has no table node")
    table = table_node.GetTable()
    if table.GetNumberOfRows() == 0:
        raise DelicaiteError(f"the table of plot series {name!r} is empty")
    y_column, x_column = series.GetYColumnName(), series.GetXColumnName()
    needed = [y_column] + ([x_column] if series.IsXColumnRequired() else [])
    for column in needed:
        if not column or table.GetColumnByName(column) is None:
            raise DelicaiteError(f"plot series {name!r}: its table has no column {column!r}")

    plot_type = series.GetPlotType()
    if plot_type in (series.PlotTypeBar, series.PlotTypeScatterBar):
        plot = vtk.vtkPlotBar()
    elif plot_type == series.PlotTypeLine:
        plot = vtk.vtkPlotLine()
    elif plot_type == series.PlotTypeScatter:
        plot = vtk.vtkPlotPoints()
        plot.SetMarkerStyle(vtk.vtkPlotPoints.CIRCLE)
    else:
        raise DelicaiteError(f"plot series {name!r}: type {series.GetPlotTypeAsString(plot_type)} is not drawn")
    plot.SetColorF(*series.GetColor())
    plot.SetWidth(series.GetLineWidth())
    if series.IsXColumnRequired():
        plot.SetUseIndexForXSeries(False)
        plot.SetInputData(table, x_column, y_column)
    else:  # bars stand at their row index; the data still needs a real column
        plot.SetUseIndexForXSeries(True)
        plot.SetInputData(table, y_column, y_column)
    plot.SetLabel(series.GetName() or y_column)

    labels = None
    label_column = series.GetLabelColumnName()
    if label_column and not series.IsXColumnRequired():
        array = table.GetColumnByName(label_column)
        if isinstance(array, vtk.vtkStringArray):
            labels = [array.GetValue(i) for i in range(array.GetNumberOfValues())]
    return plot, labels


def _style_chart(chart, chart_node, labels) -> None:
    """Title, legend, axis titles and ranges from the chart node (qMRMLPlotView's rules)."""
    chart.SetTitle((chart_node.GetTitle() or "") if chart_node.GetTitleVisibility() else "")
    chart.GetTitleProperties().SetFontSize(chart_node.GetTitleFontSize())
    chart.SetShowLegend(bool(chart_node.GetLegendVisibility()))
    for axis_id in (vtk.vtkAxis.BOTTOM, vtk.vtkAxis.LEFT):
        axis = chart.GetAxis(axis_id)
        x_axis = axis_id == vtk.vtkAxis.BOTTOM
        title, visible, auto, axis_range = (
            (chart_node.GetXAxisTitle(), chart_node.GetXAxisTitleVisibility(), chart_node.GetXAxisRangeAuto(),
             chart_node.GetXAxisRange()) if x_axis else
            (chart_node.GetYAxisTitle(), chart_node.GetYAxisTitleVisibility(), chart_node.GetYAxisRangeAuto(),
             chart_node.GetYAxisRange()))
        axis.SetTitle((title or "") if visible else "")
        if not auto:
            axis.SetBehavior(vtk.vtkAxis.FIXED)
            axis.SetUnscaledRange(*axis_range)
        axis.SetGridVisible(bool(chart_node.GetGridVisibility()))
        axis.GetTitleProperties().SetFontSize(chart_node.GetAxisTitleFontSize())
        axis.GetLabelProperties().SetFontSize(chart_node.GetAxisLabelFontSize())
    if labels:  # name the bars (the app shows them on hover; a picture has no hover)
        positions, names = vtk.vtkDoubleArray(), vtk.vtkStringArray()
        for index, label in enumerate(labels):
            positions.InsertNextValue(index)
            names.InsertNextValue(label)
        bottom = chart.GetAxis(vtk.vtkAxis.BOTTOM)
        bottom.SetCustomTickPositions(positions, names)
        if len(labels) > 3:  # long feature names side by side overlap: slant them
            bottom.GetLabelProperties().SetOrientation(25)
            bottom.GetLabelProperties().SetJustificationToRight()
        if chart_node.GetXAxisRangeAuto():
            bottom.SetBehavior(vtk.vtkAxis.FIXED)
            bottom.SetUnscaledRange(-0.75, len(labels) - 0.25)


# --- windows and pictures ----------------------------------------------------------------------------

def _render_window(size):
    """An offscreen render window with one renderer and a (headless) interactor.

    The first window comes from VTK's factory, which tries X, then EGL, then OSMesa; later ones reuse
    the class it chose, so the fallback warning is printed once. Displayable managers need an interactor.
    """
    if _window_class:
        window = getattr(vtk, _window_class[0])()
    else:
        window = vtk.vtkRenderWindow()
        if hasattr(vtk, window.GetClassName()):
            _window_class.append(window.GetClassName())
    window.SetOffScreenRendering(True)
    window.SetMultiSamples(0)
    window.SetSize(*size)
    renderer = vtk.vtkRenderer()
    window.AddRenderer(renderer)
    interactor = vtk.vtkGenericRenderWindowInteractor()
    interactor.SetRenderWindow(window)
    interactor.Initialize()
    return window, renderer


def _capture(window) -> np.ndarray:
    """The rendered back buffer as (height, width, 3) uint8, top row first."""
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    image = grab.GetOutput()
    width, height, _ = image.GetDimensions()
    pixels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, 3)
    return np.ascontiguousarray(pixels[::-1])


def _output(pixels: np.ndarray, path):
    if path is None:
        return pixels
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width, _ = pixels.shape
    image = vtk.vtkImageData()
    image.SetDimensions(width, height, 1)
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(pixels[::-1]).reshape(-1, 3), deep=True)
    image.GetPointData().SetScalars(scalars)
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputData(image)
    writer.Write()
    if writer.GetErrorCode() or not path.is_file():
        raise DelicaiteError(f"could not write the picture {path}")
    return path


def _check_size(size) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DelicaiteError(f"size must be (width, height) in pixels, not {size!r}") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise DelicaiteError(f"size {width}x{height} is outside 16..8192 pixels")
    return width, height


@contextmanager
def _vtk_warnings_off():
    previous = vtk.vtkObject.GetGlobalWarningDisplay()
    vtk.vtkObject.GlobalWarningDisplayOff()
    try:
        yield
    finally:
        vtk.vtkObject.SetGlobalWarningDisplay(previous)
