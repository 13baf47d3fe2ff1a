"""Offscreen pictures from real MRML nodes: the slice view of real CT (3D-IRCADb patient 17, in-plane
shrunk by 2) with Slicer's segmentation overlay, and plot charts, checked pixel by pixel.

The pictures are kept in Testing/output/rendering/ for a person to look at. Tests skip (saying why) only
when this machine cannot create an offscreen OpenGL context at all (probed in a separate process, so a
crashing driver cannot take pytest down)."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from matplotlib.image import imread
from scipy import ndimage

slicer = pytest.importorskip("slicer", reason="the MRML adapter tests need the slicer-core wheel (pip install '.[test]')")
vtk = pytest.importorskip("vtk")

from DELICAITELib import mrml  # noqa: E402
from DELICAITELib.errors import DelicaiteError, ImageError  # noqa: E402
from DELICAITELib.mrml.rendering import can_render_offscreen, render_chart, render_slice_view  # noqa: E402
from DELICAITELib.mrml.volumes import ijk_to_ras  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "output" / "rendering"
TUMOUR_SLICE = 97  # the axial slice with the largest tumour area on the full grid (see test_slices.py)
COLOURS = {style.name: np.array(style.colour) * 255 for style in mrml.SEGMENTS}

@pytest.fixture(scope="module", autouse=True)
def offscreen_opengl():
    """Skip when no offscreen OpenGL context renders here (no EGL, OSMesa or X display), saying why."""
    works, why = can_render_offscreen()
    if not works:
        pytest.skip("no offscreen OpenGL context on this machine (needs EGL, OSMesa or an X display; "
                    f"Debian: libegl1 libgl1-mesa-dri libgbm1): {why}")


@pytest.fixture(scope="module")
def case(ircadb17_image, ircadb17_label):
    """Scene, volume and segmentation nodes of the CT shrunk by 2 in-plane (256 x 256 x 119)."""
    image = sitk.Shrink(ircadb17_image, [2, 2, 1])
    label = sitk.Shrink(ircadb17_label, [2, 2, 1])  # nearest voxel: values stay 0 / 1 / 2
    scene = mrml.new_scene()
    volume = mrml.volume_node_from_image(scene, image, "CT")
    segmentation = mrml.segmentation_node_from_label(scene, label, volume, "Liver and tumour")
    return scene, volume, segmentation, sitk.GetArrayFromImage(label)


def _read_png(path) -> np.ndarray:
    return np.round(imread(str(path))[..., :3] * 255).astype(np.uint8)


def _on_screen(mask_2d: np.ndarray) -> np.ndarray:
    """A label slice as the 512 x 512 view shows it: voxel (row j, column i) -> 2 x 2 pixels.

    Array row 0 is the most anterior row (LPS y grows to posterior) and column 0 the patient's right
    (LPS x grows to the left), so anterior up / patient right on the image's left means no flip.
    """
    return np.kron(mask_2d, np.ones((2, 2), dtype=bool))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


def test_axial_tumour_slice_shows_ct_with_slicer_segment_overlay(case):
    scene, volume, segmentation, label = case
    z = ijk_to_ras(volume, (0, 0, TUMOUR_SLICE))[2]
    nodes_before = scene.GetNumberOfNodes()

    path = render_slice_view(volume, segmentation, slice_offset=z, size=(512, 512),
                             path=OUTPUT / "axial_tumour_slice_with_segments.png")
    plain = render_slice_view(volume, slice_offset=z, size=(512, 512), path=OUTPUT / "axial_tumour_slice_ct.png")
    assert path.is_file() and plain.is_file()
    shown, ct = _read_png(path), _read_png(plain)
    assert shown.shape == ct.shape == (512, 512, 3)
    assert scene.GetNumberOfNodes() == nodes_before  # the view's own nodes are gone again

    # The CT alone: grey (window 400 / level 40), with real structure, not a blank or flat picture.
    assert (ct[..., 0] == ct[..., 1]).all() and (ct[..., 1] == ct[..., 2]).all()
    body = ct[..., 0][ct[..., 0] > 0]
    assert body.size > 0.25 * ct[..., 0].size and body.std() > 30 and np.unique(body).size > 150

    # The overlay changes exactly the pixels of the liver and tumour of this slice, in this orientation.
    changed = (shown != ct).any(axis=-1)
    expected = _on_screen(label[TUMOUR_SLICE] > 0)
    assert _iou(changed, expected) > 0.95
    assert _iou(changed, expected[:, ::-1]) < 0.6 and _iou(changed, expected[::-1]) < 0.6  # a flip would show
    assert _iou(changed, _on_screen(label[TUMOUR_SLICE - 30] > 0)) < 0.8  # and another slice would differ

    # Slicer's 2D fill: segment colour at 50 % opacity over the CT, so 2 * shown - ct = segment colour.
    for name, value in (("Tumor", 2), ("Liver", 1)):
        inside = ndimage.binary_erosion(_on_screen(label[TUMOUR_SLICE] == value), iterations=3)
        assert np.count_nonzero(inside) > 1000
        implied = 2 * shown[inside].astype(float) - ct[inside]
        assert np.median(implied, axis=0) == pytest.approx(COLOURS[name], abs=3), name


def test_only_the_given_overlays_are_drawn_and_markups_show(case):
    scene, volume, segmentation, label = case
    z = ijk_to_ras(volume, (0, 0, TUMOUR_SLICE))[2]
    tumour_only = sitk.GetImageFromArray((label == 2).astype(np.uint8) * 2)
    tumour_only.CopyInformation(mrml.image_from_volume_node(volume))
    other = mrml.segmentation_node_from_label(scene, tumour_only, volume, "other")
    other_display = other.GetDisplayNode()
    tumour = np.argwhere(label[TUMOUR_SLICE] == 2)
    centre = tumour[len(tumour) // 2]  # a tumour voxel (row j, column i)
    markups = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "largest slice")
    markups.CreateDefaultDisplayNodes()
    markups.AddControlPoint(vtk.vtkVector3d(*ijk_to_ras(volume, (centre[1], centre[0], TUMOUR_SLICE))), "k97")
    try:
        ct = render_slice_view(volume, slice_offset=z)
        with_markups = render_slice_view(volume, slice_offset=z, markups_node=markups,
                                         path=OUTPUT / "axial_tumour_slice_markups.png")
        with_markups = _read_png(with_markups)
        assert other_display.GetVisibility() == 1  # hidden while drawing, restored afterwards
        # Without a segmentation nothing of either segmentation node is drawn; the control point is.
        changed = (with_markups != ct).any(axis=-1)
        row, col = 2 * centre + 1
        assert changed[row - 6:row + 7, col - 6:col + 7].mean() > 0.3
        assert np.count_nonzero(changed) < 3000  # a glyph and its label, not a segment fill
    finally:
        scene.RemoveNode(other)
        scene.RemoveNode(markups)


def test_coronal_view_and_slice_offset_checks(case):
    _, volume, segmentation, label = case
    picture = render_slice_view(volume, segmentation, orientation="Coronal", size=(400, 300),
                                path=OUTPUT / "coronal_middle_with_segments.png")
    shown = _read_png(picture)
    assert shown.shape == (300, 400, 3)
    liver_pixels = np.abs(shown.astype(float) - (shown.mean(axis=-1, keepdims=True))).max(axis=-1) > 20
    assert np.count_nonzero(liver_pixels) > 2000  # coloured overlay on a grey CT
    with pytest.raises(DelicaiteError, match="outside volume"):
        render_slice_view(volume, segmentation, slice_offset=1e4)
    with pytest.raises(DelicaiteError, match="orientation"):
        render_slice_view(volume, segmentation, orientation="Oblique")


def test_volume_without_image_is_refused():
    scene = mrml.new_scene()
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(ImageError, match="holds no image"):
        render_slice_view(empty)
    with pytest.raises(ImageError):
        render_slice_view(None)


# --- charts ------------------------------------------------------------------------------------------

def _risk_table(scene, tace: float, haic: float):
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", "risks")
    names, values = vtk.vtkStringArray(), vtk.vtkDoubleArray()
    names.SetName("therapy")
    values.SetName("P(PD)")
    for therapy, p in (("TACE", tace), ("HAIC", haic)):
        names.InsertNextValue(therapy)
        values.InsertNextValue(p)
    table.AddColumn(names)
    table.AddColumn(values)
    return table


def _bars(picture: np.ndarray, colour, min_width: int = 30) -> list[tuple[int, int]]:
    """(left column, height in pixels) of each bar drawn in ``colour`` (legend swatches are narrower)."""
    hit = (np.abs(picture.astype(int) - np.asarray(colour) * 255) <= 6).all(axis=-1)
    runs, count = ndimage.label(hit.any(axis=0))
    bars = []
    for run in range(1, count + 1):
        columns = np.flatnonzero(runs == run)
        if columns.size >= min_width:
            bars.append((int(columns[0]), int(hit[:, columns].sum(axis=0).max())))
    return bars


def test_bar_chart_node_is_drawn_with_its_values(tmp_path):
    scene = mrml.new_scene()
    table = _risk_table(scene, 0.62, 0.31)
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", "P(PD) by therapy")
    series.SetAndObserveTableNodeID(table.GetID())
    series.SetPlotType(series.PlotTypeBar)
    series.SetYColumnName("P(PD)")
    series.SetLabelColumnName("therapy")
    series.SetColor(0.2, 0.4, 0.8)
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", "risk chart")
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle("Risk of progression")
    chart.SetXAxisTitle("therapy")
    chart.SetYAxisTitle("P(PD)")
    chart.SetYAxisRangeAuto(False)
    chart.SetYAxisRange(0.0, 1.0)
    chart.SetLegendVisibility(False)

    picture = _read_png(render_chart(chart, size=(640, 400), path=OUTPUT / "bar_chart_raw_nodes.png"))
    assert picture.shape == (400, 640, 3)
    assert np.count_nonzero((picture < 100).all(axis=-1)) > 500  # axes, ticks, title and labels in dark ink
    bars = _bars(picture, (0.2, 0.4, 0.8))
    assert len(bars) == 2
    (left_tace, h_tace), (left_haic, h_haic) = bars
    assert left_tace < left_haic  # TACE first, as the table's rows
    assert h_tace / h_haic == pytest.approx(0.62 / 0.31, rel=0.05)
    assert render_chart(chart, size=(320, 200)).shape == (200, 320, 3)  # array without a path


def test_risk_chart_node_of_a_result_is_drawn():
    scene = mrml.new_scene()
    from DELICAITELib.case import CaseResult

    result = CaseResult.from_json({"risk": {"p_pd_tace": 0.58, "p_pd_haic": 0.29}, "cutoff": 0.0,
                                   "interaction_score": {"h": -1.2, "lower": -1.5, "upper": -0.9, "interval_level": 0.9,
                                                         "training_percentile": 20.0}})
    chart = mrml.risk_chart_node(scene, result)
    picture = _read_png(render_chart(chart, path=OUTPUT / "risk_chart_node.png"))
    heights = {}
    for i in range(chart.GetNumberOfPlotSeriesNodes()):
        series = chart.GetNthPlotSeriesNode(i)
        bars = _bars(picture, series.GetColor())
        assert len(bars) == 1, series.GetName()
        heights[series.GetName()] = bars[0][1]
    assert set(heights) == {"TACE", "HAIC"}
    assert heights["TACE"] / heights["HAIC"] == pytest.approx(0.58 / 0.29, rel=0.05)


def test_empty_or_broken_charts_are_refused():
    scene = mrml.new_scene()
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", "empty chart")
    with pytest.raises(DelicaiteError, match="no plot series"):
        render_chart(chart)
    table = _risk_table(scene, 0.5, 0.4)
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", "wrong column")
    series.SetAndObserveTableNodeID(table.GetID())
    series.SetPlotType(series.PlotTypeBar)
    series.SetYColumnName("no such column")
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    with pytest.raises(DelicaiteError, match="no column 'no such column'"):
        render_chart(chart)
    with pytest.raises(DelicaiteError, match="plot chart node"):
        render_chart(table)


def test_recommend_panel_beside_the_volume(case, tmp_path):
    """What DELICAITE Recommend lays out for a real case: the red slice view at the largest tumour slice,
    with the segments and the three slice points, beside the risk and driver charts of the result that
    the whole pipeline computed from these same nodes (the CT as both phases, the demo patient)."""
    from DELICAITELib.case import CaseEngine
    from DELICAITELib.demo import DEMO_CLINICAL, demo_model_dir

    scene, volume, segmentation, label = case
    images = mrml.images_from_case_nodes(volume, volume, segmentation)
    result = CaseEngine.for_model(demo_model_dir()).run(images.ap, images.vp, images.label, DEMO_CLINICAL).result
    nodes = mrml.result_nodes(scene, result)
    try:
        markups = mrml.slice_markups_node(scene, volume, segmentation)
        largest = result.slices[0].index
        assert mrml.volumes.ras_to_ijk(volume, markups.GetNthControlPointPositionVector(0))[2] == pytest.approx(largest)
        view = render_slice_view(volume, segmentation, slice_offset=ijk_to_ras(volume, (0, 0, largest))[2],
                                 markups_node=markups, size=(480, 480))
        risks = render_chart(nodes["risk_chart"], size=(480, 240))
        drivers = render_chart(nodes["drivers_chart"], size=(480, 240))
        panel = np.concatenate([view, np.concatenate([risks, drivers], axis=0)], axis=1)
        OUTPUT.mkdir(parents=True, exist_ok=True)
        from matplotlib.image import imsave

        imsave(OUTPUT / "recommend_panel.png", panel)
        assert panel.shape == (480, 960, 3)
        # Each part shows something: the overlay colours on the CT, and bars on the white charts.
        tumour_colour = np.abs(view.astype(float) - COLOURS["Tumor"]).max(axis=-1) < 40
        assert np.count_nonzero(tumour_colour) > 200
        assert np.count_nonzero(risks.std(axis=-1) > 30) > 2000  # the two coloured therapy bars
        assert np.count_nonzero((drivers < 120).all(axis=-1)) > 2000  # the driver bars (dark grey)
    finally:
        mrml.remove_result_nodes(nodes)
