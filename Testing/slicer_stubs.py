"""Stand-ins for what only the 3D Slicer application provides, so the modules' Logic classes run on the
real MRML classes of the slicer-core wheel: the ScriptedLoadableModule base classes, the parameter-node
decorator, qt's timer (fired by hand) and the markups module's "jump slices" call.

`install_stand_ins(monkeypatch)` (behind the `app` fixture of conftest.py) puts a fresh scene in
slicer.mrmlScene and the stand-ins in sys.modules; `load_module(name)` imports a module file such as DELICAITERecommend.py;
`run_to_the_end(runner)` does what the GUI's timer does until a background job has reported back.
"""

import importlib.util
import sys
import types
import unittest
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

slicer = pytest.importorskip("slicer", reason="the module Logic tests need the slicer-core wheel (pip install '.[test]')")

from DELICAITELib import mrml  # noqa: E402


# ---- stand-ins for what only the Slicer application provides ---------------------------------------------

class _ScriptedLoadableModuleLogic:
    def __init__(self, parent=None):
        pass


class _ScriptedLoadableModule:
    def __init__(self, parent=None):
        pass


class _ScriptedLoadableModuleWidget:
    def __init__(self, parent=None):
        pass


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
    wrapper = _stub_module("slicer.parameterNodeWrapper", parameterNodeWrapper=lambda cls: cls,
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
