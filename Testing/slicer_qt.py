"""PythonQt's `qt` module on real PySide6 widgets, so the DELICAITE module Widgets run offscreen in tests.

PythonQt makes Qt properties attributes (``label.text = "x"``) and connects signals by C++ signature
(``button.connect("clicked(bool)", fn)``), giving a slot only as many arguments as it takes.
``make_qt_module()`` is a module for ``sys.modules["qt"]`` whose QObject classes are PySide6's subclassed
(on first use) with ``PythonQtAPI``: ``qt.QLabel()`` is a real QLabel with PythonQt's API. Other names
(QUrl, QTableWidgetItem, Qt) are PySide6's own; QDesktopServices and QFileDialog's pickers are stand-ins,
as a test must not open a browser or wait for a person.

Design choice for .ui files: ``qt.QUiLoader.createWidget`` builds every widget from the qt module's
classes (Slicer/CTK classes from the stand-ins below), so each widget *is* a PythonQtAPI object: no
proxies, and slicer-core's own slicer.util.loadUI / childWidgetVariables work unchanged on this module.
Layouts stay plain PySide6 (same methods; the modules use no layout property). The .ui's connections
(mrmlSceneChanged -> setMRMLScene) are wired with vtk pointers as Python objects. Also: ``load_ui``,
``child_widget_variables``, ``application()`` (offscreen without a display), ``process_events()``;
exceptions in slots are printed by PySide6 and kept in ``slot_errors``.
"""

import inspect
import os
import re
import types
import warnings
import weakref
import xml.etree.ElementTree as ET

# Before Qt loads: a headless machine has no display for the default platform plugin.
if not os.environ.get("QT_QPA_PLATFORM") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"

import shiboken6  # noqa: E402
from PySide6 import QtCore, QtGui, QtUiTools, QtWidgets  # noqa: E402

slot_errors = []  # exceptions raised by Python slots (PySide6 only prints them)
_VTK_POINTER = re.compile(r"\bvtk\w+\s*\*")  # "vtkMRMLScene*" in a signature: a Python object here
_properties = {}  # class -> names of its Qt properties
# (id, name) of properties being read. PySide6 finds a Python override of a virtual method by looking its
# name up on the object; for sizeHint or QProgressBar.text (properties too) that lookup comes back here
# while the property is read, and must get the method, not read the property again (endless recursion).
_reading = set()


def application():
    """The QApplication, made once."""
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(["slicer_qt"])


def process_events():
    application().processEvents()


def _qt_properties(obj):
    names = _properties.get(type(obj))
    if names is None:
        meta = QtCore.QObject.metaObject(obj)
        names = _properties[type(obj)] = frozenset(meta.property(i).name() for i in range(meta.propertyCount()))
    return names


def _is_dynamic(obj, name):
    return QtCore.QByteArray(name.encode()) in QtCore.QObject.dynamicPropertyNames(obj)


class PythonQtAPI:
    """PythonQt's view of a QObject: Qt properties (dynamic ones too) as attributes, winning over
    same-named methods as in PythonQt; ``name`` is objectName; ``connect("signal(args)", fn)``."""

    def __getattribute__(self, name):
        if name[0] != "_" and name in _qt_properties(self) and (id(self), name) not in _reading:
            _reading.add((id(self), name))
            try:
                return QtCore.QObject.property(self, name)
            finally:
                _reading.discard((id(self), name))
        if name == "connect":  # PySide6's lookup finds QObject's static connect before ours
            return object.__getattribute__(self, name)
        return super().__getattribute__(name)

    def __getattr__(self, name):  # only when nothing else has that name
        if name[0] != "_" and _is_dynamic(self, name):
            return QtCore.QObject.property(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name[0] == "_" or not (name in _qt_properties(self) or _is_dynamic(self, name)):
            super().__setattr__(name, value)
        elif not QtCore.QObject.setProperty(self, name, value) and name in _qt_properties(self):
            raise TypeError(f"{type(self).__name__}.{name} cannot be set to {value!r}")

    name = property(lambda self: QtCore.QObject.objectName(self), lambda self, v: QtCore.QObject.setObjectName(self, v))

    def connect(self, *args):
        """PythonQt's ``obj.connect("clicked(bool)", fn)``; QObject.connect's own forms otherwise."""
        if len(args) == 2 and isinstance(args[0], str) and callable(args[1]):
            return connect(self, *args)
        return QtCore.QObject.connect(self, *args)


def connect(obj, signature, slot):
    """Connect the signal of ``obj`` that the C++ signature names (that overload) to ``slot``."""
    normalized = QtCore.QMetaObject.normalizedSignature(_VTK_POINTER.sub("PyObject", signature)).data().decode()
    if QtCore.QObject.metaObject(obj).indexOfSignal(normalized) < 0:
        raise ValueError(f"{type(obj).__name__} has no signal {signature!r}")
    name, args = normalized[:-1].split("(", 1)
    signal = getattr(obj, name)
    (signal[args] if args else signal).connect(_pythonqt_slot(slot, args.count(",") + 1 if args else 0))
    return True


def _pythonqt_slot(fn, count):
    """PythonQt passes a slot only as many of the signal's arguments as it accepts."""
    try:
        params = inspect.signature(fn).parameters.values()
        positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        take = count if any(p.kind == p.VAR_POSITIONAL for p in params) else min(count, positional)
    except (TypeError, ValueError):  # a builtin without a signature: give it everything
        take = count

    def slot(*args):
        try:
            return fn(*args[:take])
        except Exception as error:
            slot_errors.append(error)
            raise
    return slot


# ---- stand-ins for the Slicer / CTK widgets of the .ui files -------------------------------------------

class ctkCollapsibleButton(PythonQtAPI, QtWidgets.QGroupBox):
    """Honest: a box titled ``text`` whose ``collapsed`` hides its child widgets and shows them again on
    expand, as ctk's does; that is all the .ui files and modules use of it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._text, self._collapsed, self._hid = "", False, []

    def _set(self, text=None, collapsed=None):
        self._text = self._text if text is None else text
        self._collapsed = self._collapsed if collapsed is None else collapsed
        self.setTitle(("\u25b8 " if self._collapsed else "\u25be ") + self._text)
        self.setFlat(self._collapsed)  # a collapsed one is just its title, as ctk's is
        self.setMaximumHeight(self.fontMetrics().height() + 4 if self._collapsed else 16777215)  # QWIDGETSIZE_MAX
        if self._collapsed:  # hide what shows now; expanding shows just that again
            shown = [w for w in self.findChildren(QtWidgets.QWidget, options=QtCore.Qt.FindDirectChildrenOnly)
                     if not w.isHidden()]
            for widget in shown:
                widget.setVisible(False)
            self._hid += shown
        else:
            for widget in self._hid:
                widget.setVisible(True)
            self._hid = []

    text = QtCore.Property(str, lambda self: self._text, lambda self, v: self._set(text=v))
    collapsed = QtCore.Property(bool, lambda self: self._collapsed, lambda self, v: self._set(collapsed=v))


class qMRMLWidget(PythonQtAPI, QtWidgets.QWidget):
    """Honest: a container whose ``setMRMLScene`` emits ``mrmlSceneChanged``, which the .ui files connect
    to each selector's ``setMRMLScene``, as in qMRMLWidget."""

    mrmlSceneChanged = QtCore.Signal(object)
    _scene = None

    def setMRMLScene(self, scene):
        self._scene = scene
        self.mrmlSceneChanged.emit(scene)


def _observe(widget, vtk_object, events, method):
    """Call ``widget.method()`` on each event without keeping the widget alive: a scene that points back
    at its selectors would make a cycle, and the garbage collector would destroy the scene, firing its
    events, mid-collection. Returns the observer tags."""
    widget_ref = weakref.ref(widget)

    def react(caller, event):
        alive = widget_ref()
        if alive is not None and shiboken6.isValid(alive):
            getattr(alive, method)()
    return [vtk_object.AddObserver(event, react) for event in events]


def _relisting(attribute):
    """A property setter that stores the value and lists the nodes again."""
    def write(self, value):
        setattr(self, attribute, list(value) if attribute == "_types" else value)
        self._relist()
    return write


class qMRMLNodeComboBox(PythonQtAPI, QtWidgets.QComboBox):
    """Honest: lists the real scene's nodes of ``nodeTypes`` by name (subclasses unless
    ``showChildNodeTypes`` is false, never HideFromEditors nodes, a first entry ``noneDisplay`` when
    ``noneEnabled``), follows nodes added and removed, selects by node or ID and signals
    ``currentNodeChanged``. No add/remove/rename menu: addEnabled etc. stay dynamic properties."""

    currentNodeChanged = QtCore.Signal(object)
    nodeTypes = QtCore.Property("QStringList", lambda self: self._types, _relisting("_types"))
    noneEnabled = QtCore.Property(bool, lambda self: self._none, _relisting("_none"))
    noneDisplay = QtCore.Property(str, lambda self: self._none_text, _relisting("_none_text"))
    showChildNodeTypes = QtCore.Property(bool, lambda self: self._children, _relisting("_children"))
    currentNodeID = QtCore.Property(str, lambda self: QtWidgets.QComboBox.currentData(self) or "",
                                    lambda self, v: self.setCurrentNodeID(v))

    def __init__(self, parent=None):
        super().__init__(parent)
        self._types, self._none, self._none_text, self._children = [], False, "None", True
        self._scene, self._tags = None, []
        self.currentIndexChanged.connect(lambda index: self.currentNodeChanged.emit(self.currentNode()))

    def setMRMLScene(self, scene):
        for tag in self._tags:
            self._scene.RemoveObserver(tag)
        self._scene = scene
        events = (scene.NodeAddedEvent, scene.NodeRemovedEvent) if scene is not None else ()
        self._tags = _observe(self, scene, events, "_relist")
        self._relist()

    def nodes(self):
        found = []
        for class_name in self._types if self._scene is not None else []:
            collection = self._scene.GetNodesByClass(class_name)
            for node in (collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())):
                if ((self._children or node.GetClassName() == class_name) and not node.GetHideFromEditors()
                        and all(node is not n for n in found)):
                    found.append(node)
        return found

    def currentNode(self):
        node_id = QtWidgets.QComboBox.currentData(self)
        return self._scene.GetNodeByID(node_id) if node_id and self._scene is not None else None

    def setCurrentNode(self, node):
        self.setCurrentNodeID(node.GetID() if node is not None else "")

    def setCurrentNodeID(self, node_id):
        self.setCurrentIndex(self.findData(node_id) if node_id or self._none else -1)

    def _relist(self):
        """Rebuild the entries keeping the current node; signal only a real change of node."""
        before = self.currentNodeID
        self.blockSignals(True)
        self.clear()
        if self._none:
            self.addItem(self._none_text, "")
        for node in self.nodes():
            self.addItem(node.GetName(), node.GetID())
        index = self.findData(before) if before else -1
        self.setCurrentIndex(index if index >= 0 else (0 if QtWidgets.QComboBox.count(self) else -1))
        self.blockSignals(False)
        if self.currentNodeID != before:
            self.currentNodeChanged.emit(self.currentNode())


class ctkPathLineEdit(PythonQtAPI, QtWidgets.QLineEdit):
    """Honest: the path is the line's text (``currentPath``, ``currentPathChanged``); ``settingKey`` is kept
    and ``addCurrentPathToHistory()`` records into ``history`` instead of QSettings. No browse button."""

    currentPathChanged = QtCore.Signal(str)
    currentPath = QtCore.Property(str, QtWidgets.QLineEdit.text, QtWidgets.QLineEdit.setText)
    settingKey = QtCore.Property(str, lambda self: self._key, lambda self, v: setattr(self, "_key", v))

    def __init__(self, parent=None):
        super().__init__(parent)
        self.history, self._key = [], ""
        self.textChanged.connect(self.currentPathChanged)

    def addCurrentPathToHistory(self):
        if self.currentPath and self.currentPath not in self.history:
            self.history.insert(0, self.currentPath)


class qMRMLTableView(PythonQtAPI, QtWidgets.QTableWidget):
    """Honest: shows a real vtkMRMLTableNode's column names and cells as text and refills when the node
    changes: what the Recommend panel shows. Not editable, no sorting or plotting."""

    _scene = _node = _tag = None

    def setMRMLScene(self, scene):
        self._scene = scene

    def setMRMLTableNode(self, node):
        if self._node is not None:
            self._node.RemoveObserver(self._tag)
        self._node = node
        self._tag = _observe(self, node, ("ModifiedEvent",), "_fill")[0] if node is not None else None
        self._fill()

    def _fill(self):
        table = self._node.GetTable() if self._node is not None else None
        self.setRowCount(table.GetNumberOfRows() if table is not None else 0)
        self.setColumnCount(table.GetNumberOfColumns() if table is not None else 0)
        self.setHorizontalHeaderLabels([table.GetColumnName(c) for c in range(self.columnCount)])
        for r in range(self.rowCount):
            for c in range(self.columnCount):
                self.setItem(r, c, QtWidgets.QTableWidgetItem(table.GetValue(r, c).ToString()))


STAND_INS = {c.__name__: c for c in (ctkCollapsibleButton, qMRMLWidget, qMRMLNodeComboBox, ctkPathLineEdit,
                                     qMRMLTableView)}


class QDesktopServices:
    """Stand-in: records each URL in ``opened`` instead of starting a browser."""

    opened = []
    openUrl = staticmethod(lambda url: QDesktopServices.opened.append(url.toString()) or True)


class QFileDialog(PythonQtAPI, QtWidgets.QFileDialog):
    """Stand-in for the static pickers: they return ``answer`` ("" = cancelled; PythonQt gives the path
    alone) instead of waiting for a person."""

    answer = ""
    getExistingDirectory = getOpenFileName = staticmethod(lambda *args, **kwargs: QFileDialog.answer)


# ---- the qt module and the .ui loader -----------------------------------------------------------------

class QUiLoader(PythonQtAPI, QtUiTools.QUiLoader):
    """Builds a .ui from PythonQtAPI widgets (the stand-ins for Slicer/CTK classes) with its connections."""

    def createWidget(self, class_name, parent=None, name=""):
        cls = STAND_INS.get(class_name) or getattr(make_qt_module(), class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, QtWidgets.QWidget)):
            return super().createWidget(class_name, parent, name)
        widget = cls(parent)
        widget.setObjectName(name)
        return widget

    def load(self, device, parent=None):
        """``device``: a path or an open QIODevice (slicer.util.loadUI passes a QFile)."""
        if isinstance(device, (str, os.PathLike)):
            with open(device, "rb") as handle:
                root = ET.fromstring(handle.read())
        else:
            root = ET.fromstring(device.readAll().data())
        connections = root.find("connections")
        if connections is not None:  # Qt refuses the vtk pointer types: wired below instead
            root.remove(connections)
        for element in root.iter("widget"):
            if element.get("class") in STAND_INS:  # e.g. ctkPathLineEdit::Dirs|...: kept as text
                for value in element.findall("property/set") + element.findall("property/enum"):
                    value.tag = "string"
        buffer = QtCore.QBuffer()
        buffer.setData(ET.tostring(root))
        buffer.open(QtCore.QIODevice.ReadOnly)
        widget = super().load(buffer, parent)
        if widget is None:
            return None
        for c in connections if connections is not None else []:
            sender, receiver = (widget if QtCore.QObject.objectName(widget) == c.findtext(k) else
                                widget.findChild(QtCore.QObject, c.findtext(k)) for k in ("sender", "receiver"))
            if sender is None or receiver is None:  # Qt's loader warns and goes on
                warnings.warn(f"{c.findtext('sender')}.{c.findtext('signal')} -> {c.findtext('receiver')}."
                              f"{c.findtext('slot')}: no such widget in the .ui", stacklevel=2)
                continue
            connect(sender, c.findtext("signal"), getattr(receiver, c.findtext("slot").split("(")[0]))
        for button in widget.findChildren(ctkCollapsibleButton):
            button.collapsed = button.collapsed  # the .ui set it before the children existed
        return widget


_module = None


def make_qt_module():
    """The PythonQt-like ``qt`` module (one per process); makes the QApplication."""
    global _module
    if _module is None:
        application()
        _module = types.ModuleType("qt", "PythonQt's qt module on PySide6 (Testing/slicer_qt.py)")
        _module.__dict__.update(QUiLoader=QUiLoader, QDesktopServices=QDesktopServices, QFileDialog=QFileDialog,
                                __getattr__=_export)
    return _module


def _export(name):
    """qt.<name> on first use: a QObject class with the PythonQt API, anything else as PySide6 has it."""
    value = next((getattr(m, name) for m in (QtWidgets, QtGui, QtCore, QtUiTools) if hasattr(m, name)), None)
    if value is None:
        raise AttributeError(f"module 'qt' has no attribute {name!r}")
    if isinstance(value, type) and issubclass(value, QtCore.QObject):
        value = type(name, (PythonQtAPI, value), {"__module__": "qt", "__doc__": value.__doc__})
    setattr(_module, name, value)
    return value


def load_ui(path):
    """slicer.util.loadUI: the .ui's top widget, every widget with the PythonQt API."""
    widget = make_qt_module().QUiLoader().load(str(path))
    if widget is None:
        raise RuntimeError(f"Could not load UI file: {path}")
    return widget


def child_widget_variables(widget):
    """slicer.util.childWidgetVariables: ``widget`` and every named object under it, by objectName."""
    ui = types.SimpleNamespace()
    for child in [widget, *widget.findChildren(QtCore.QObject)]:
        if QtCore.QObject.objectName(child):
            setattr(ui, QtCore.QObject.objectName(child), child)
    return ui
