"""What the three DELICAITE modules share inside Slicer: library start-up, the hand-off to the Segment
Editor, the widget skeleton (the .ui bound to a typed parameter node) and the background runner each
module's Logic owns.

Shipped with the hub module as DELICAITECommon.support; DELICAITESegment and DELICAITERecommend import it
from there (an installed extension puts every module's folder on Slicer's Python path). Plain Slicer and Qt code: it loads before DELICAITELib's dependencies are installed.
"""

import importlib.util
import os
import sys

HUB_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # DELICAITE/, above this package


def ensureLibraryOnPath():
    """Make DELICAITELib importable: it lives in the hub module's folder."""
    if importlib.util.find_spec("DELICAITELib") is None and HUB_FOLDER not in sys.path:
        sys.path.insert(0, HUB_FOLDER)


def ensureLibrary(parentWidget=None, moduleName="DELICAITE"):
    """DELICAITELib importable with the module's Python packages (dependencies.py). False, after saying what
    to press, when some are missing; self-tests install them. Installation is the user's choice: the
    module's *Install dependencies* button (DependencyPanel)."""
    ensureLibraryOnPath()
    from .dependencies import DependencyInstallError, ensureDependencies

    try:
        return ensureDependencies(moduleName, parentWidget)
    except DependencyInstallError as err:
        showInstallError(err, parentWidget)
        return False


def showInstallError(error, parentWidget=None):
    """A failed installation: what to do, with pip's whole output under Details."""
    import slicer

    slicer.util.errorDisplay(f"DELICAITE's Python packages could not be installed. {error}",
                             detailedText=getattr(error, "output", ""), parent=parentWidget)


class DependencyPanel:
    """A status line and an *Install dependencies* button at the top of a module's panel.

    The line says what is missing and about how much it downloads; the button installs it in the background
    of a wait cursor, and any failure opens a dialog with what to do and pip's whole output. ``onReady`` runs
    once the packages import (at once when they already do), so a module can finish building its panel."""

    def __init__(self, widget, moduleName, onReady=None):
        import qt

        self.moduleName = moduleName
        self.onReady = onReady
        self.label = qt.QLabel()
        self.label.wordWrap = True
        self.button = qt.QPushButton("Install dependencies")
        self.button.toolTip = "Install the Python packages this module needs into Slicer's Python (wheels only)"
        self.button.connect("clicked(bool)", self.install)
        box = qt.QWidget()
        row = qt.QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.button)
        widget.layout.insertWidget(0, box)
        self.refresh()

    def refresh(self):
        ensureLibraryOnPath()
        from .dependencies import statusLine

        ready, line = statusLine(self.moduleName)
        self.label.text = line
        self.button.visible = not ready
        if ready and self.onReady is not None:
            onReady, self.onReady = self.onReady, None
            onReady()
        return ready

    def install(self):
        import slicer

        from .dependencies import DependencyInstallError, installDependencies

        try:
            with slicer.util.WaitCursor():
                installDependencies(self.moduleName, say=slicer.util.showStatusMessage)
        except (DependencyInstallError, OSError) as err:  # OSError: no Python to run pip with, a full disk
            showInstallError(err)
        self.refresh()


def pathText(path):
    """A path parameter as text; "" when none is chosen (an unset pathlib.Path parameter reads ".")."""
    return "" if path is None or str(path) in ("", ".") else str(path)


def openSegmentEditor(volumeNode, segmentationNode):
    """Switch to the Segment Editor with this segmentation and its source volume selected."""
    import slicer

    slicer.util.selectModule("SegmentEditor")
    editor = slicer.util.getModuleWidget("SegmentEditor").editor
    editor.setSegmentationNode(segmentationNode)
    if hasattr(editor, "setSourceVolumeNode"):  # Slicer >= 5.2 ("master" before)
        editor.setSourceVolumeNode(volumeNode)
    else:
        editor.setMasterVolumeNode(volumeNode)


class LayoutKeeper:
    """Switches the view layout for a module and gives the user's own layout back when the module is left.

    The layout before the first switch is remembered; ``restore`` puts it back only while the layout is still
    the one switched to (a layout the user chose since is theirs, and kept)."""

    def __init__(self):
        self._previous = None
        self._ours = None

    def switchTo(self, layoutId):
        import slicer

        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:  # no main window (Slicer --no-main-window)
            return False
        if self._previous is None:
            self._previous = layoutManager.layout
        layoutManager.setLayout(layoutId)
        self._ours = layoutId
        return True

    def restore(self):
        import slicer

        layoutManager = slicer.app.layoutManager()
        if layoutManager is not None and self._previous is not None and layoutManager.layout == self._ours:
            layoutManager.setLayout(self._previous)
        self._previous = self._ours = None


class ModuleWidgetSkeleton:
    """The part every DELICAITE module widget shares; mix it in first, before ScriptedLoadableModuleWidget
    and VTKObservationMixin.

    ``setupModuleUI`` loads the .ui; ``initializeParameterNode`` binds its widgets (dynamic property
    SlicerParameterName) to the Logic's typed parameter node (``logic.getParameterNode()``) and calls
    ``updateGUI`` whenever a parameter changes; entering the module, leaving it and closing the scene
    are followed, and a layout switched through ``self.layoutKeeper`` is given back on leaving. A widget
    defines ``updateGUI(caller=None, event=None)`` and may define ``onParameterNodeReady`` (defaults),
    ``beforeSceneClose`` (stop background work) and ``afterSceneClose`` (clear what it shows)."""

    _parameterNode = None
    _parameterNodeGuiTag = None
    _followedCase = None
    layoutKeeper = None

    def setupModuleUI(self, uiPath):
        """Load ``uiPath`` (e.g. "UI/Module.ui") into the panel; returns the widgets by name."""
        import slicer

        uiWidget = slicer.util.loadUI(self.resourcePath(uiPath))
        self.layout.addWidget(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        return slicer.util.childWidgetVariables(uiWidget)

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)
        self._restoreLayout()

    def _restoreLayout(self):
        if self.layoutKeeper is not None:
            self.layoutKeeper.restore()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        self.onParameterNodeReady()

    def setParameterNode(self, parameterNode):
        import vtk

        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUI)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUI)
        self.updateGUI()

    def followCase(self, segmentationNode):
        """Call ``updateGUI`` whenever this case's segmentation node changes (another module, the Segment
        Editor, or the user marking it reviewed): its progress is kept there (caseState)."""
        import vtk

        if segmentationNode is self._followedCase:
            return
        if self._followedCase is not None:
            self.removeObserver(self._followedCase, vtk.vtkCommand.ModifiedEvent, self.updateGUI)
        self._followedCase = segmentationNode
        if segmentationNode is not None:
            self.addObserver(segmentationNode, vtk.vtkCommand.ModifiedEvent, self.updateGUI)

    def onSceneStartClose(self, caller, event):
        self.followCase(None)
        self.beforeSceneClose()
        self.setParameterNode(None)
        self._restoreLayout()

    def onSceneEndClose(self, caller, event):
        self.afterSceneClose()
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onParameterNodeReady(self):
        pass

    def beforeSceneClose(self):
        pass

    def afterSceneClose(self):
        pass


class BackgroundRunner:
    """One background `delicaite` job at a time (DELICAITELib.jobs.BackgroundJob), owned by a Logic.

    A QTimer on the GUI thread polls the job: each ProgressEvent (message, fraction of the job, kind)
    goes to ``onEvent(event)``, and ``onDone(job)`` runs once when the process has ended, whether it
    succeeded, failed (``job.failure_message()``) or was cancelled. So the GUI stays responsive and
    nothing reads printed text to know how far the work has come.
    """

    def __init__(self, pollIntervalMs=300):
        self.pollIntervalMs = pollIntervalMs
        self.job = None
        self._timer = None
        self._onEvent = None
        self._onDone = None

    def isRunning(self):
        return self.job is not None

    def start(self, job, onEvent=None, onDone=None):
        """Watch ``job`` (already started)."""
        import qt

        if self.isRunning():
            raise RuntimeError("a DELICAITE job is already running; cancel it first")
        self.job, self._onEvent, self._onDone = job, onEvent, onDone
        if self._timer is None:  # one timer for the runner's life: never deleted inside its own timeout
            self._timer = qt.QTimer()
            self._timer.connect("timeout()", self.poll)
        self._timer.setInterval(self.pollIntervalMs)
        self._timer.start()
        return job

    def cancel(self):
        """End the process; ``onDone`` then sees ``job.cancelled``."""
        if self.job is not None:
            self.job.cancel()
            self.poll()

    def poll(self):
        job = self.job
        if job is None:
            return
        self._deliver(job.poll())
        if job.running:
            return
        self._timer.stop()
        job.wait()
        self._deliver(job.poll())
        onDone = self._onDone
        self.job = self._onEvent = self._onDone = None
        if onDone is not None:
            onDone(job)

    def _deliver(self, events):
        if self._onEvent is not None:
            for event in events:
                self._onEvent(event)
