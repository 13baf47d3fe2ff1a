"""Stand-ins for what only the 3D Slicer application provides, so the modules' Logic classes run on the
real MRML classes of the slicer-core wheel: the ScriptedLoadableModule base classes, the parameter-node
decorator, qt's timer (fired by hand) and the markups module's "jump slices" call.

The parameter-node stand-in stores each typed field where Slicer's parameterNodeWrapper stores it in
the real vtkMRMLScriptedModuleNode (a node field as a node reference named after the field, any other
field as a text parameter), so saving and reloading a real scene shows what a module keeps across a
save. Its connectGui binds the three kinds of widget the .ui files bind (node selectors, combo boxes,
path edits) both ways; the modules' self-tests run Slicer's real wrapper.

`install_stand_ins(monkeypatch)` (behind the `app` fixture of conftest.py) puts a fresh scene in
slicer.mrmlScene and the stand-ins in sys.modules; `load_module(name)` imports a module file such as DELICAITERecommend.py;
`run_to_the_end(runner)` does what the GUI's timer does until a background job has reported back.
"""

import importlib.util
import json
import pathlib
import sys
import types
import typing
import unittest
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

slicer = pytest.importorskip("slicer", reason="the module Logic tests need the slicer-core wheel (pip install '.[test]')")

from DELICAITELib import mrml  # noqa: E402


# ---- stand-ins for what only the Slicer application provides ---------------------------------------------

class _ScriptedLoadableModuleLogic:
    """getParameterNode as Slicer's: one vtkMRMLScriptedModuleNode per module, a singleton of the scene."""

    def __init__(self, parent=None):
        self.moduleName = type(self).__name__.removesuffix("Logic")

    def getParameterNode(self):
        scene = slicer.mrmlScene
        node = scene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = slicer.vtkMRMLScriptedModuleNode()
            node.SetSingletonTag(self.moduleName)
            node.SetAttribute("ModuleName", self.moduleName)
            node = scene.AddNode(node)
        return node


def _is_node_type(hint):
    return isinstance(hint, type) and issubclass(hint, slicer.vtkMRMLNode)


def _connect_gui(wrapper, gui):
    """Bind the widgets with a SlicerParameterName to the fields, both ways, as Slicer's connectors do for
    the three kinds the modules use: node selectors, combo boxes (by text) and path edits."""
    bound = [(w, w.property("SlicerParameterName")) for w in vars(gui).values()
             if hasattr(w, "property") and w.property("SlicerParameterName")]

    def to_widgets(*args):
        for widget, name in bound:
            value = getattr(wrapper, name)
            widget.blockSignals(True)
            if hasattr(widget, "setCurrentNode"):
                widget.setCurrentNode(value)
            elif hasattr(widget, "currentPath"):
                widget.currentPath = "" if str(value) in ("", ".") else str(value)
            else:
                if widget.count == 0:  # a Choice fills an empty combo box with its values
                    widget.addItems(wrapper.choices.get(name, []))
                widget.setCurrentText(str(value))
            widget.blockSignals(False)

    for widget, name in bound:
        if hasattr(widget, "setCurrentNode"):
            widget.currentNodeChanged.connect(lambda node, n=name: setattr(wrapper, n, node))
        elif hasattr(widget, "currentPath"):
            widget.currentPathChanged.connect(lambda path, n=name: setattr(wrapper, n, pathlib.Path(path)))
        else:
            widget.currentTextChanged.connect(lambda text, n=name: setattr(wrapper, n, text))
    to_widgets()
    return wrapper.parameterNode.AddObserver("ModifiedEvent", to_widgets)


def _disconnect_gui(wrapper, tag):
    wrapper.parameterNode.RemoveObserver(tag)


def _parameter_node_wrapper(cls):
    """Typed fields on a vtkMRMLScriptedModuleNode: nodes as references, the rest as text parameters."""
    hints = typing.get_type_hints(cls)
    choices = {name: list(hint.__metadata__[0]) for name, hint in typing.get_type_hints(cls, include_extras=True).items()
               if typing.get_origin(hint) is typing.Annotated}

    def field(name, hint):
        # Slicer's unspecified defaults: "", 0, False, Path(), {}, and None for a node
        unspecified = {str: "", int: 0, float: 0.0, bool: False, pathlib.Path: pathlib.Path()}.get(hint)
        default = getattr(cls, name, unspecified)

        def get(self):
            if _is_node_type(hint):
                return self.parameterNode.GetNodeReference(name)
            text = self.parameterNode.GetParameter(name)
            if text == "":
                return dict(default or {}) if typing.get_origin(hint) is dict else default
            if typing.get_origin(hint) is dict:
                return json.loads(text)
            if hint is bool:
                return text == "true"
            return hint(text) if hint in (str, pathlib.Path, int, float) else text

        def set(self, value):
            if _is_node_type(hint):
                self.parameterNode.SetNodeReferenceID(name, value.GetID() if value is not None else None)
            elif typing.get_origin(hint) is dict:
                self.parameterNode.SetParameter(name, json.dumps(dict(value), sort_keys=True))
            else:
                self.parameterNode.SetParameter(name, str(value).lower() if hint is bool else str(value))

        return property(get, set)

    def __init__(self, parameterNode):
        self.parameterNode = parameterNode

    members = {name: field(name, hint) for name, hint in hints.items()}
    members.update(__init__=__init__, __doc__=cls.__doc__, choices=choices, connectGui=_connect_gui, disconnectGui=_disconnect_gui,
                   AddObserver=lambda self, *args: self.parameterNode.AddObserver(*args),
                   RemoveObserver=lambda self, *args: self.parameterNode.RemoveObserver(*args))
    return type(cls.__name__, (), members)


class _ScriptedLoadableModule:
    def __init__(self, parent=None):
        pass


class _ScriptedLoadableModuleWidget:
    """The module panel as Slicer gives it to a widget: ``parent`` (with ``isEntered``), its vertical
    ``layout`` and ``resourcePath``. Needs the Qt shim as ``qt`` (slicer_qt.make_qt_module)."""

    def __init__(self, parent=None):
        import qt

        self.parent = parent if parent is not None else qt.QWidget()
        self.parent.isEntered = False
        self.layout = qt.QVBoxLayout(self.parent)
        self.moduleName = type(self).__name__.removesuffix("Widget")

    def resourcePath(self, filename):
        return str(PROJECT_ROOT / self.moduleName / "Resources" / filename)

    def setup(self):
        pass  # Slicer's adds the developer-mode Reload and Test buttons


class _Recorder:
    """Records the calls made to it (the markups module's slice-jumping logic)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, args))


class _ManualTimer:
    """qt.QTimer without an event loop: the test fires it by hand."""

    def __init__(self):
        self.callback, self.active = None, False

    def connect(self, signal, callback):
        self.callback = callback

    def setInterval(self, milliseconds):
        pass

    def start(self):
        self.active = True

    def stop(self):
        self.active = False


def _stub_module(name, **attributes):
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def install_stand_ins(monkeypatch):
    """A real MRML scene as slicer.mrmlScene, with the application-only pieces stood in for."""
    scene = mrml.new_scene()
    markups_logic = _Recorder()
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)
    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(testingEnabled=lambda: True, processEvents=lambda: None,
                                                            layoutManager=lambda: None), raising=False)
    monkeypatch.setattr(slicer, "modules", types.SimpleNamespace(markups=types.SimpleNamespace(
        logic=lambda: markups_logic)), raising=False)
    monkeypatch.setattr(slicer.util, "setSliceViewerLayers", lambda **kwargs: None)
    base = _stub_module("slicer.ScriptedLoadableModule", ScriptedLoadableModule=_ScriptedLoadableModule,
                        ScriptedLoadableModuleWidget=_ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic=_ScriptedLoadableModuleLogic,
                        ScriptedLoadableModuleTest=unittest.TestCase)
    wrapper = _stub_module("slicer.parameterNodeWrapper", parameterNodeWrapper=_parameter_node_wrapper,
                           Choice=lambda choices: choices)
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", base)
    monkeypatch.setitem(sys.modules, "slicer.parameterNodeWrapper", wrapper)
    monkeypatch.setitem(sys.modules, "qt", _stub_module("qt", QTimer=_ManualTimer))
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "DELICAITE"))  # DELICAITECommon, as Slicer's module path has it
    return types.SimpleNamespace(scene=scene, markups_logic=markups_logic)


def load_module(name: str):
    path = PROJECT_ROOT / name / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_slicer_module_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_to_the_end(runner):
    """What the GUI's timer does: tick until the background job has reported back."""
    runner.job.wait(600)
    runner._timer.callback()
