"""What the three DELICAITE modules share inside Slicer: library start-up, the hand-off to the Segment
Editor, and the background runner each module's Logic owns.

Shipped with the hub module; DELICAITESegment and DELICAITERecommend import it from there (an installed
extension puts every module's files on Slicer's Python path; a source tree's modules add the hub
folder). Plain Slicer and Qt code: it loads before DELICAITELib's dependencies are installed.
"""

import importlib.util
import os
import sys

HUB_FOLDER = os.path.dirname(os.path.abspath(__file__))


def ensureLibraryOnPath():
    """Make DELICAITELib importable: it lives in the hub module's folder."""
    if importlib.util.find_spec("DELICAITELib") is None and HUB_FOLDER not in sys.path:
        sys.path.insert(0, HUB_FOLDER)


def ensureLibrary(parentWidget=None):
    """DELICAITELib importable with its Python packages, installed after asking on first use
    (DELICAITEDependencies); False when the user declines or the installation fails (said in a dialog)."""
    ensureLibraryOnPath()
    from DELICAITEDependencies import ensureDependencies

    try:
        return ensureDependencies(parentWidget)
    except (ImportError, RuntimeError) as err:
        import slicer

        slicer.util.errorDisplay(f"DELICAITE's Python packages could not be set up: {err}")
        return False


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
