"""Slicer's slice views of real MRML nodes, offscreen, and a screenshot of a module panel beside them.

``render_slice_views`` draws each view with Slicer's own slice pipeline (vtkMRMLSliceLogic reslicing
through the volume's IJK-to-RAS matrix with its display node's window/level, and the 2D segmentation
displayable manager drawing each segment's fill and outline in its colour) through
DELICAITELib.mrml.render_slice_view; it needs an offscreen OpenGL context (EGL, OSMesa or X:
``mrml.can_render_offscreen()``). Above each view goes the slice controller bar in the view's colour with
its letter and offset ("R  S: 12.5 mm"), as in Slicer. ``compose_screenshot`` puts a Qt panel on the left
and the views on the right, as Slicer's main window shows a module, and writes one PNG atomically.
"""

import os
import tempfile
from contextlib import contextmanager

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

import slicer_qt
from DELICAITELib import mrml

# Slicer's default views: orientation, letter, colour (the layout's viewcolor), axis of the offset.
VIEWS = {"Red": ("Axial", "R", "#F34A33", 2, "S"), "Green": ("Coronal", "G", "#6EB04B", 1, "A"),
         "Yellow": ("Sagittal", "Y", "#EDD54C", 0, "R")}
LIVER_WINDOW = (350.0, 40.0)  # (window, level) HU when the display node has no window of its own
BAR_HEIGHT = 22  # the slice controller bar drawn above each view
BACKGROUND = "#2b2b2b"  # the main window behind the panel and views


def render_slice_views(volume_node, segmentation_node=None, views=("Red", "Green"), *, size=(400, 400),
                       focus_ras=None, window_level=None, bar=True):
    """{view name: (height, width, 3) uint8 RGB} of the named slice views (Red axial, Green coronal,
    Yellow sagittal) through ``focus_ras`` (R, A, S mm; the volume's centre when None), anterior up
    and patient right on the image's left in the axial view, superior up in the coronal one.

    ``window_level``: (W, L) in HU; None uses the display node's window unless it is automatic, then
    LIVER_WINDOW; the node is given back as it was. ``bar``: draw the controller bar above each view.
    """
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise ValueError(f"unknown slice view {unknown[0]!r}; choose from {', '.join(VIEWS)}")
    if focus_ras is None:
        bounds = [0.0] * 6
        volume_node.GetRASBounds(bounds)
        focus_ras = [(bounds[2 * i] + bounds[2 * i + 1]) / 2 for i in range(3)]
    pictures = {}
    with _window(volume_node, window_level):
        for name in views:
            orientation, letter, colour, axis, axis_name = VIEWS[name]
            pixels = mrml.render_slice_view(volume_node, segmentation_node, orientation=orientation,
                                            slice_offset=float(focus_ras[axis]), size=size)
            offset = f"{axis_name}: {focus_ras[axis]:.1f} mm"
            pictures[name] = _with_bar(pixels, letter, colour, offset) if bar else pixels
    return pictures


@contextmanager
def _window(volume_node, window_level):
    """Show ``volume_node`` with ``window_level`` (see render_slice_views), restoring its display node."""
    if volume_node.GetDisplayNode() is None:
        volume_node.CreateDefaultDisplayNodes()
    display = volume_node.GetDisplayNode()
    saved = (display.GetAutoWindowLevel(), display.GetWindow(), display.GetLevel())
    if window_level is None and not display.GetAutoWindowLevel():
        yield  # the node's own window, as Slicer would show it
        return
    display.AutoWindowLevelOff()
    display.SetWindowLevel(*(window_level or LIVER_WINDOW))
    try:
        yield
    finally:
        display.SetWindowLevel(saved[1], saved[2])
        display.SetAutoWindowLevel(saved[0])


def _with_bar(pixels, letter, colour, text):
    """The view under a bar in its colour: the letter in bold, then the slice offset."""
    height, width, _ = pixels.shape
    image = QtGui.QImage(width, height + BAR_HEIGHT, QtGui.QImage.Format_RGB888)
    image.fill(QtGui.QColor(colour))
    painter = _painter(image)
    painter.drawImage(0, BAR_HEIGHT, _qimage(pixels))
    font = painter.font()
    font.setBold(True)
    font.setPixelSize(BAR_HEIGHT - 8)
    painter.setFont(font)
    painter.setPen(QtGui.QColor("black"))
    painter.drawText(QtCore.QRect(6, 0, width - 12, BAR_HEIGHT), QtCore.Qt.AlignVCenter | QtCore.Qt.AlignLeft, letter)
    font.setBold(False)
    painter.setFont(font)
    painter.drawText(QtCore.QRect(28, 0, width - 34, BAR_HEIGHT), QtCore.Qt.AlignVCenter | QtCore.Qt.AlignLeft, text)
    painter.end()
    return _array(image)


def compose_screenshot(panel, view_images, path):
    """Write ``path`` (PNG): ``panel`` (a QWidget; one not shown is sized to fit its width) on the left,
    the views (a dict or list of RGB arrays / QImages) stacked on the right, each scaled to an equal share
    of the height. Written to a temporary file first, then renamed: a reader never sees half a PNG."""
    if not panel.isVisible():  # size it as a layout would, word-wrapped labels at their full height
        QtWidgets.QWidget.adjustSize(panel)
        width = QtWidgets.QWidget.width(panel)  # unbound calls: a PythonQt widget reads width as a property
        height = (QtWidgets.QWidget.heightForWidth(panel, width) if QtWidgets.QWidget.hasHeightForWidth(panel)
                  else QtWidgets.QWidget.sizeHint(panel).height())
        QtWidgets.QWidget.resize(panel, width, height)
    panel_picture = QtWidgets.QWidget.grab(panel).toImage()
    images = [_qimage(v) if isinstance(v, np.ndarray) else v
              for v in (view_images.values() if isinstance(view_images, dict) else view_images)]
    view_height = max(panel_picture.height() // max(len(images), 1), 256)
    scaled = [i.scaledToHeight(view_height, QtCore.Qt.SmoothTransformation) for i in images]
    width = panel_picture.width() + max((i.width() for i in scaled), default=0)
    canvas = QtGui.QImage(width, max(panel_picture.height(), view_height * len(scaled)), QtGui.QImage.Format_RGB888)
    canvas.fill(QtGui.QColor(BACKGROUND))
    painter = _painter(canvas)
    painter.drawImage(0, 0, panel_picture)
    for index, image in enumerate(scaled):
        painter.drawImage(panel_picture.width(), index * view_height, image)
    painter.end()
    path = os.fspath(path)
    handle, temporary = tempfile.mkstemp(suffix=".png", dir=os.path.dirname(os.path.abspath(path)))
    os.close(handle)
    try:
        if not canvas.save(temporary, "PNG"):
            raise OSError(f"could not write the screenshot {path}")
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a picture is for others to read
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _painter(image):
    slicer_qt.application()  # text needs the application's fonts
    painter = QtGui.QPainter(image)
    painter.setRenderHint(QtGui.QPainter.Antialiasing)
    painter.setRenderHint(QtGui.QPainter.TextAntialiasing)
    return painter


def _qimage(pixels):
    pixels = np.ascontiguousarray(pixels[..., :3], dtype=np.uint8)
    height, width, _ = pixels.shape
    return QtGui.QImage(pixels.data, width, height, 3 * width, QtGui.QImage.Format_RGB888).copy()


def _array(image):
    image = image.convertToFormat(QtGui.QImage.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).copy()
