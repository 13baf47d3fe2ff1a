"""DELICAITESegment: liver and tumour auto-segmentation, one-click fixes and the three largest tumour slices.

Thin module: the network, the corrections and the slice choice live in DELICAITELib (installed by the
DELICAITE hub module); DELICAITELib.mrml converts between nodes and SimpleITK images. Segmentation runs
in a PythonSlicer background process (DELICAITELib.jobs, watched by the Logic's BackgroundRunner) so the
application stays responsive and the user can cancel. DELICAITELib is imported inside the methods that
need it, so this module loads even before the Python dependencies (torch, MONAI) are installed.
"""

import os
import shutil
import tempfile
import time
from typing import Annotated

import slicer
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

# The hub module's folder: Slicer puts every scripted module's folder on sys.path when it registers the
# modules, before it parses any of them (a source tree and an installed extension alike).
import DELICAITECommon.caseState as caseState
import DELICAITECommon.support as DELICAITESupport

DEVICE_CHOICES = ["Auto", "CPU", "CUDA"]
# what the Segmenter box shows -> DELICAITELib.segmentation.backends name
BACKEND_CHOICES = {"Automatic": "auto", "DELICAITE network": "delicaite", "TotalSegmentator": "totalsegmentator"}


class DELICAITESegment(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "DELICAITE Segment"
        self.parent.categories = ["DELICAITE"]
        self.parent.dependencies = ["DELICAITE", "Segmentations", "Markups"]  # the hub carries DELICAITELib
        self.parent.contributors = ["DELICAITE developers"]
        self.parent.helpText = (
            "Automatic liver and liver-tumour segmentation of a CT, one-click corrections (largest liver "
            "island, hole filling, smoothing, tumour restricted to the liver), hand-off to the Segment Editor, "
            "and the three axial slices with the largest tumour area. Research use only."
        )
        self.parent.acknowledgementText = (
            "Segmentation network built with MONAI. Process-runner pattern after SlicerMONAIAuto3DSeg "
            "(A. Lasso). Method: An C, Li L, Luo Y, et al., J Hepatocell Carcinoma."
        )


@parameterNodeWrapper
class DELICAITESegmentParameterNode:
    """What the module remembers in the scene: the CT, the segmentation, the device, the slice markups."""

    inputVolume: slicer.vtkMRMLScalarVolumeNode
    outputSegmentation: slicer.vtkMRMLSegmentationNode
    device: Annotated[str, Choice(DEVICE_CHOICES)] = "Auto"
    backend: Annotated[str, Choice(list(BACKEND_CHOICES))] = "Automatic"
    slicesMarkups: slicer.vtkMRMLMarkupsFiducialNode


class DELICAITESegmentWidget(DELICAITESupport.ModuleWidgetSkeleton, ScriptedLoadableModuleWidget,
                              VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._positions = []

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.ui = self.setupModuleUI("UI/DELICAITESegment.ui")
        self.dependencyPanel = DELICAITESupport.DependencyPanel(self, "DELICAITESegment")
        self.logic = DELICAITESegmentLogic()

        self.ui.segmentButton.connect("clicked(bool)", self.onSegment)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.editInSegmentEditorButton.connect("clicked(bool)", self.onEditInSegmentEditor)
        for button, correction in ((self.ui.keepLargestLiverButton, "keep_largest_liver_island"),
                                   (self.ui.fillHolesButton, "fill_liver_holes"),
                                   (self.ui.smoothButton, "smooth_liver"),
                                   (self.ui.restrictTumourButton, "restrict_tumour_to_liver")):
            button.connect("clicked(bool)", lambda checked=False, name=correction: self.onCorrection(name))
        self.ui.undoCorrectionButton.connect("clicked(bool)", self.onUndoCorrection)
        self.ui.growTumourButton.connect("clicked(bool)", self.onGrowTumour)
        self.ui.pickSlicesButton.connect("clicked(bool)", self.onPickSlices)
        self.ui.slicesTableWidget.connect("cellClicked(int,int)", self.onSliceRowClicked)

        self.initializeParameterNode()

    def cleanup(self):
        if self.logic:
            self.logic.cancelSegmentation()
        self.removeObservers()

    def beforeSceneClose(self):
        self.logic.cancelSegmentation()
        self.logic.forgetUndo()

    def onParameterNodeReady(self):
        if not self._parameterNode.inputVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume:
                self._parameterNode.inputVolume = firstVolume

    def setCaseNodes(self, apNode, vpNode, segmentationNode):
        """Called by the DELICAITE hub: segment the case's AP (else VP) volume into its segmentation."""
        self.initializeParameterNode()
        volume = apNode or vpNode
        if volume is not None:
            self._parameterNode.inputVolume = volume
        if segmentationNode is not None:
            self._parameterNode.outputSegmentation = segmentationNode

    def updateGUI(self, caller=None, event=None):
        parameters = self._parameterNode
        volume = parameters.inputVolume if parameters else None
        segmentation = parameters.outputSegmentation if parameters else None
        running = self.logic.isRunning()
        self.ui.segmentButton.enabled = bool(volume) and not running
        self.ui.cancelButton.enabled = running
        ready = bool(volume and segmentation) and not running
        for button in (self.ui.editInSegmentEditorButton, self.ui.keepLargestLiverButton, self.ui.fillHolesButton,
                       self.ui.smoothButton, self.ui.restrictTumourButton, self.ui.pickSlicesButton,
                       self.ui.growTumourButton):
            button.enabled = ready
        self.ui.undoCorrectionButton.enabled = ready and self.logic.canUndo(segmentation)

    # ------------------------------------------------------------------ segmentation

    def onSegment(self):
        parameters = self._parameterNode
        if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITESegment"):
            return
        with slicer.util.tryWithErrorDisplay("Could not start the segmentation.", waitCursor=True):
            self.ui.progressBar.value = 0
            backend, line = self.logic.chooseBackend(BACKEND_CHOICES[parameters.backend])
            self.ui.backendStatusLabel.text = line
            self.ui.statusLabel.text = "Starting the segmentation process..."
            self.logic.segmentInBackground(parameters.inputVolume, parameters.outputSegmentation,
                                           parameters.device.lower(), self.onProgress, self.onDone, backend=backend)
        self.updateGUI()

    def onCancel(self):
        self.ui.statusLabel.text = "Cancelling..."
        self.logic.cancelSegmentation()

    def onProgress(self, event):
        self.ui.statusLabel.text = event.message
        if event.fraction is not None:
            self.ui.progressBar.value = int(round(100 * event.fraction))

    def onDone(self, succeeded, message, segmentationNode):
        self.ui.progressBar.value = 100 if succeeded else 0
        self.ui.statusLabel.text = message
        if succeeded and self._parameterNode:
            self._parameterNode.outputSegmentation = segmentationNode
        self.updateGUI()
        if not succeeded and message != self.logic.CANCELLED:
            slicer.util.errorDisplay(f"Segmentation failed: {message}")

    # ------------------------------------------------------------------ correction

    def onEditInSegmentEditor(self):
        parameters = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not open the Segment Editor.", waitCursor=True):
            DELICAITESupport.openSegmentEditor(parameters.inputVolume, parameters.outputSegmentation)

    def onCorrection(self, name):
        parameters = self._parameterNode
        if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITESegment"):
            return
        with slicer.util.tryWithErrorDisplay("The correction failed.", waitCursor=True):
            self.ui.statusLabel.text = self.logic.applyCorrection(
                parameters.outputSegmentation, parameters.inputVolume, name)
        self.updateGUI()

    def onGrowTumour(self):
        parameters = self._parameterNode
        if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITESegment"):
            return
        crosshair = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        with slicer.util.tryWithErrorDisplay("Could not grow the tumour from that point.", waitCursor=True):
            self.ui.statusLabel.text = self.logic.growTumourAt(
                parameters.outputSegmentation, parameters.inputVolume, crosshair.GetCrosshairRAS())
        self.updateGUI()

    def onUndoCorrection(self):
        parameters = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not undo the correction.", waitCursor=True):
            self.ui.statusLabel.text = self.logic.undoCorrection(parameters.outputSegmentation)
        self.updateGUI()

    # ------------------------------------------------------------------ largest slices

    def onPickSlices(self):
        import qt

        parameters = self._parameterNode
        if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITESegment"):
            return
        with slicer.util.tryWithErrorDisplay("Could not pick the largest tumour slices.", waitCursor=True):
            markups, self._positions = self.logic.pickLargestSlices(
                parameters.inputVolume, parameters.outputSegmentation, parameters.slicesMarkups)
            parameters.slicesMarkups = markups
            table = self.ui.slicesTableWidget
            table.setRowCount(len(self._positions))
            for row, position in enumerate(self._positions):
                for column, text in enumerate((str(row + 1), str(position["index"]), f"{position['area_mm2']:.0f}")):
                    table.setItem(row, column, qt.QTableWidgetItem(text))
            table.selectRow(0)
            self.logic.showSlice(parameters.inputVolume, self._positions[0])

    def onSliceRowClicked(self, row, column):
        if 0 <= row < len(self._positions):
            self.logic.showSlice(self._parameterNode.inputVolume, self._positions[row])


class DELICAITESegmentLogic(ScriptedLoadableModuleLogic):
    """Segmentation, corrections and slice picking on nodes; every algorithm is DELICAITELib's."""

    CANCELLED = "cancelled"
    # The one-click fixes: name -> (what the status line says, DELICAITELib.segmentation.corrections call)
    CORRECTIONS = {
        "keep_largest_liver_island": ("kept the largest liver island",
                                      lambda c, label: c.keep_largest_island(label, "liver")),
        "fill_liver_holes": ("filled holes in the liver", lambda c, label: c.fill_holes(label, "liver")),
        "smooth_liver": ("smoothed the liver (2 mm closing)",
                         lambda c, label: c.smooth(label, "liver", method="closing", radius_mm=2.0)),
        "restrict_tumour_to_liver": ("removed tumour outside the liver",
                                     lambda c, label: c.restrict_tumour_to_liver(label)),
    }

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.runner = DELICAITESupport.BackgroundRunner()
        # segmentation node -> (its label map before the last fix, the grid it was read on, a digest of what
        # the fix left): keyed by the node itself, not its ID (a new scene reuses IDs), and used only while
        # the node still holds what the fix left
        self._undo = {}
        self.lastReview = None  # the plausibility gate's verdict on the last automatic mask

    def getParameterNode(self):
        return DELICAITESegmentParameterNode(super().getParameterNode())

    # ------------------------------------------------------------------ segmentation

    @staticmethod
    def chooseBackend(requested="auto"):
        """(backend, status line): "auto" prefers TotalSegmentator when installed (SlicerTotalSegmentator
        installs it into Slicer's Python), else the embedded network."""
        from DELICAITELib.segmentation.backends import describe_backend

        return describe_backend(requested, slicer_extension=hasattr(slicer.modules, "totalsegmentator"))

    def segment(self, volumeNode, segmentationNode=None, device="cpu", progress=None, backend="auto"):
        """Segment in this process (blocks); returns the segmentation node (a new one when None is given)."""
        from DELICAITELib import mrml
        from DELICAITELib.segmentation.backends import automatic_mask

        image = mrml.image_from_volume_node(volumeNode)
        result = automatic_mask(image, device=device, backend=backend, progress=progress)
        self.lastReview = result.review
        return self._writeLabel(volumeNode, segmentationNode, result.label)

    def segmentInBackground(self, volumeNode, segmentationNode, device="auto", onProgress=None, onDone=None,
                            backend="auto"):
        """Segment in a PythonSlicer process; returns at once.

        ``onProgress(event)`` gets each ProgressEvent (message, fraction of the work or None);
        ``onDone(succeeded, message, segmentationNode)`` is called once at the end: the message is the
        volumes found, the command's error, or CANCELLED.
        """
        import SimpleITK as sitk
        from DELICAITELib import jobs, mrml
        from DELICAITELib.segmentation.plausibility import MaskReview, review_path

        if self.isRunning():
            raise RuntimeError("a segmentation is already running; cancel it first")
        if volumeNode is None:
            raise ValueError("select the CT volume to segment")
        image = mrml.image_from_volume_node(volumeNode)
        workDir = tempfile.mkdtemp(prefix="DELICAITESegment-")
        try:
            ctPath = os.path.join(workDir, "ct.nrrd")
            sitk.WriteImage(image, ctPath)
            labelPath = os.path.join(workDir, "label.nrrd")
            job = jobs.segmentation_job(ctPath, labelPath, device=device, backend=backend)
        except Exception:
            shutil.rmtree(workDir, ignore_errors=True)
            raise

        def finished(job):
            node, message = None, None
            try:
                if job.succeeded:
                    label = sitk.ReadImage(labelPath)
                    node = self._writeLabel(volumeNode, segmentationNode, label)
                    self.lastReview = MaskReview.read(review_path(labelPath))
                    message = self._volumesMessage(label, self.lastReview)
                else:
                    message = job.failure_message()
            except Exception as error:  # noqa: BLE001 — e.g. the volume was deleted meanwhile
                node, message = None, str(error)
            finally:
                shutil.rmtree(workDir, ignore_errors=True)
            if onDone:
                onDone(node is not None, message, node)

        return self.runner.start(job, onProgress, finished)

    def isRunning(self):
        return self.runner.isRunning()

    def cancelSegmentation(self):
        """End the background process; onDone then reports CANCELLED."""
        self.runner.cancel()

    def _writeLabel(self, volumeNode, segmentationNode, label):
        """The automatic mask into the node (a new one when None): a new mask waits for a new review."""
        from DELICAITELib import mrml

        if segmentationNode is None:
            segmentationNode = mrml.segmentation_node_from_label(volumeNode.GetScene(), label, volumeNode,
                                                                 f"{volumeNode.GetName()} segmentation")
        else:
            if segmentationNode.GetDisplayNode() is None:
                segmentationNode.CreateDefaultDisplayNodes()
            segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
            mrml.update_segmentation_node(segmentationNode, label)
        caseState.maskReplaced(segmentationNode)
        return segmentationNode

    @staticmethod
    def _volumesMessage(label, review=None):
        """The volumes, and the plausibility gate's warning when the automatic mask failed it."""
        from DELICAITELib.io import label_volumes_ml

        volumes = label_volumes_ml(label)
        text = f"Liver {volumes['liver_ml']:.0f} mL, tumour {volumes['tumour_ml']:.0f} mL."
        if review is not None and not review.plausible:
            text += f" WARNING: {review.message()}."
        return text

    # ------------------------------------------------------------------ corrections

    def applyCorrection(self, segmentationNode, volumeNode, name):
        """Apply one of CORRECTIONS to the Liver/Tumor segments; returns a one-line summary."""
        from DELICAITELib import mrml
        from DELICAITELib.segmentation import corrections

        if name not in self.CORRECTIONS:
            raise ValueError(f"unknown correction {name!r}; choose one of {', '.join(self.CORRECTIONS)}")
        what, fix = self.CORRECTIONS[name]
        before = mrml.label_from_segmentation_node(segmentationNode, volumeNode)
        after = fix(corrections, before)
        self._replaceMask(segmentationNode, volumeNode, before, after)
        return f"{what[0].upper()}{what[1:]}. {self._volumesMessage(after)}"

    def growTumourAt(self, segmentationNode, volumeNode, pointRAS):
        """Grow a tumour from ``pointRAS`` (mm) inside the liver into the Tumor segment; undoable."""
        from DELICAITELib import mrml
        from DELICAITELib.segmentation.backends import grow_seeded_tumours

        before = mrml.label_from_segmentation_node(segmentationNode, volumeNode)
        image = mrml.image_from_volume_node(volumeNode)
        after = grow_seeded_tumours(image, before, [tuple(pointRAS)])
        self._replaceMask(segmentationNode, volumeNode, before, after)
        r, a, s = pointRAS
        return f"Grew a tumour from R {r:.1f}, A {a:.1f}, S {s:.1f}. {self._volumesMessage(after)}"

    def _replaceMask(self, segmentationNode, volumeNode, before, after):
        """A fix's mask into the node, undoable; slices, features and result of the old mask lapse."""
        from DELICAITELib import mrml

        mrml.update_segmentation_node(segmentationNode, after)
        caseState.maskCorrected(segmentationNode)
        now = mrml.label_from_segmentation_node(segmentationNode, volumeNode)  # what the node holds now
        self._undo = {segmentationNode: (before, volumeNode, self._digest(now))}  # one level, one node

    @staticmethod
    def _digest(label):
        import hashlib

        import SimpleITK as sitk

        return hashlib.sha256(sitk.GetArrayFromImage(label).tobytes()).hexdigest()

    def canUndo(self, segmentationNode):
        return segmentationNode is not None and segmentationNode in self._undo

    def forgetUndo(self):
        """Called when the scene closes: a fix of the case before is never undone into the next one."""
        self._undo = {}

    def undoCorrection(self, segmentationNode):
        """Put back the segments as they were before the last fix (one level), if the segmentation still
        holds what that fix left (an edit since, or another case in a reused node, makes it stale)."""
        from DELICAITELib import mrml

        record = self._undo.pop(segmentationNode, None) if segmentationNode is not None else None
        if record is None:
            raise ValueError("there is no fix to undo on this segmentation")
        before, volumeNode, digest = record
        if self._digest(mrml.label_from_segmentation_node(segmentationNode, volumeNode)) != digest:
            raise ValueError("the segmentation changed since the last fix, so that fix can no longer be undone")
        mrml.update_segmentation_node(segmentationNode, before)
        caseState.maskCorrected(segmentationNode)
        return f"Undid the last fix. {self._volumesMessage(before)}"

    # ------------------------------------------------------------------ largest slices

    def pickLargestSlices(self, volumeNode, segmentationNode, markupsNode=None, n=3):
        """Markups node with the ``n`` largest tumour slices (largest first) and their positions.

        ``markupsNode``: refill this node instead of adding one (by default the case's own slices node).
        Positions are dicts with index, area_mm2, ras and offset (DELICAITELib.mrml.slices.slice_positions_ras).
        The markups become the case's slices (caseState), which the hub's step 4 shows as done.
        """
        from DELICAITELib import mrml
        from DELICAITELib.mrml.slices import slice_markups_node, slice_positions_ras

        label = mrml.label_from_segmentation_node(segmentationNode, volumeNode)
        positions = slice_positions_ras(volumeNode, label, n)
        markupsNode = markupsNode or caseState.derivedNode(segmentationNode, caseState.SLICES_REFERENCE)
        markupsNode = slice_markups_node(volumeNode.GetScene(), volumeNode, label, n, node=markupsNode)
        caseState.setDerivedNode(segmentationNode, caseState.SLICES_REFERENCE, markupsNode)
        return markupsNode, positions

    def showSlice(self, volumeNode, position):
        """Show ``volumeNode`` and move the slice views (the red axial one included) to ``position``."""
        slicer.util.setSliceViewerLayers(background=volumeNode)
        x, y, z = position["ras"]
        slicer.modules.markups.logic().JumpSlicesToLocation(x, y, z, True)


class DELICAITESegmentTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer on the synthetic phantom (192 x 160 x 40 voxels, CPU)."""

    # Guard against a hung background process; not a speed requirement.
    BACKGROUND_GUARD_S = 900

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.assertTrue(DELICAITESupport.ensureLibrary(moduleName="DELICAITESegment"))  # installs without asking in testing mode
        self.setUp()
        self.test_segment_and_correct()
        self.setUp()
        self.test_pick_largest_slices()
        self.setUp()
        self.test_background_segmentation_and_cancel()

    def _phantomVolume(self):
        from DELICAITELib import mrml
        from DELICAITELib.phantom import make_phantom

        phantom = make_phantom()
        return phantom, mrml.volume_node_from_image(slicer.mrmlScene, phantom.vp, "Phantom VP")

    def test_segment_and_correct(self):
        import numpy as np
        import SimpleITK as sitk
        from DELICAITELib import mrml
        from DELICAITELib.io import label_volumes_ml

        self.delayDisplay("Segmenting the phantom on the CPU")
        phantom, volume = self._phantomVolume()
        logic = DELICAITESegmentLogic()
        segmentationNode = logic.segment(volume, None, device="cpu")
        segmentation = segmentationNode.GetSegmentation()
        self.assertTrue(segmentation.GetSegmentIdBySegmentName("Liver"))
        self.assertTrue(segmentation.GetSegmentIdBySegmentName("Tumor"))

        label = mrml.label_from_segmentation_node(segmentationNode, volume)
        liverMl = label_volumes_ml(label)["liver_ml"]
        # The phantom's liver is 353 mL; the network (trained on real CT) finds it and some more.
        self.assertGreater(liverMl, 200.0)
        self.assertLess(liverMl, 2000.0)
        found = sitk.GetArrayFromImage(label) >= 1
        truth = sitk.GetArrayFromImage(phantom.label) >= 1
        self.assertGreater(np.count_nonzero(found & truth) / np.count_nonzero(truth), 0.8)

        self.delayDisplay("One-click fix: keep the largest liver island, then undo it")
        message = logic.applyCorrection(segmentationNode, volume, "keep_largest_liver_island")
        self.assertIn("largest liver island", message)
        fixed = mrml.label_from_segmentation_node(segmentationNode, volume)
        islands = sitk.ConnectedComponent(sitk.Cast(fixed >= 1, sitk.sitkUInt8))
        self.assertEqual(int(sitk.GetArrayViewFromImage(islands).max()), 1)
        self.assertTrue(logic.canUndo(segmentationNode))
        logic.undoCorrection(segmentationNode)
        restored = mrml.label_from_segmentation_node(segmentationNode, volume)
        self.assertTrue(np.array_equal(sitk.GetArrayFromImage(restored), sitk.GetArrayFromImage(label)))
        self.assertFalse(logic.canUndo(segmentationNode))

        logic.applyCorrection(segmentationNode, volume, "restrict_tumour_to_liver")
        restricted = sitk.GetArrayFromImage(mrml.label_from_segmentation_node(segmentationNode, volume))
        self.assertGreater(np.count_nonzero(restricted >= 1), 0)
        self.delayDisplay("Test passed")

    def test_pick_largest_slices(self):
        from DELICAITELib import mrml
        from DELICAITELib.mrml.volumes import ras_to_ijk
        from DELICAITELib.slices import largest_tumour_slices

        self.delayDisplay("Picking the three largest tumour slices of the phantom's true label map")
        phantom, volume = self._phantomVolume()
        segmentationNode = mrml.segmentation_node_from_label(slicer.mrmlScene, phantom.label, volume, "Phantom truth")
        expected = largest_tumour_slices(phantom.label)
        logic = DELICAITESegmentLogic()
        markups, positions = logic.pickLargestSlices(volume, segmentationNode)

        self.assertEqual(markups.GetNumberOfControlPoints(), 3)
        self.assertEqual([p["index"] for p in positions], [s.index for s in expected])
        areas = [p["area_mm2"] for p in positions]
        self.assertEqual(areas, sorted(areas, reverse=True))
        for n, s in enumerate(expected):
            self.assertEqual(markups.GetNthControlPointLabel(n), f"k={s.index}: {s.area_mm2:.0f} mm²")
            ijk = ras_to_ijk(volume, markups.GetNthControlPointPositionVector(n))
            self.assertAlmostEqual(ijk[2], s.index, places=3)

        # Picking again refills the same node rather than adding another.
        again, _ = logic.pickLargestSlices(volume, segmentationNode, markups)
        self.assertIs(again, markups)
        self.assertEqual(slicer.mrmlScene.GetNodesByClass("vtkMRMLMarkupsFiducialNode").GetNumberOfItems(), 1)

        logic.showSlice(volume, positions[0])
        red = slicer.app.layoutManager().sliceWidget("Red").sliceLogic()
        self.assertAlmostEqual(red.GetSliceOffset(), positions[0]["offset"], delta=0.5 * volume.GetSpacing()[2])
        self.delayDisplay("Test passed")

    def _waitFor(self, done):
        deadline = time.time() + self.BACKGROUND_GUARD_S
        while not done:
            self.assertLess(time.time(), deadline, "the background segmentation never reported back")
            slicer.app.processEvents()
            time.sleep(0.05)

    def test_background_segmentation_and_cancel(self):
        self.delayDisplay("Segmenting the phantom in a PythonSlicer process")
        _, volume = self._phantomVolume()
        logic = DELICAITESegmentLogic()
        lines, done = [], {}
        logic.segmentInBackground(volume, None, "cpu", onProgress=lambda event: lines.append(event.fraction),
                                  onDone=lambda ok, message, node: done.update(ok=ok, message=message, node=node))
        self.assertTrue(logic.isRunning())
        self._waitFor(done)
        self.assertTrue(done["ok"], done["message"])
        self.assertTrue(done["message"].startswith("Liver "))
        self.assertTrue(done["node"].GetSegmentation().GetSegmentIdBySegmentName("Liver"))
        fractions = [f for f in lines if f is not None]
        self.assertTrue(fractions and fractions == sorted(fractions))
        self.assertFalse(logic.isRunning())

        self.delayDisplay("Cancelling a background segmentation")
        segmentationNode = done["node"]
        done.clear()
        logic.segmentInBackground(volume, segmentationNode, "cpu",
                                  onDone=lambda ok, message, node: done.update(ok=ok, message=message, node=node))
        logic.cancelSegmentation()
        self._waitFor(done)
        self.assertFalse(done["ok"])
        self.assertEqual(done["message"], DELICAITESegmentLogic.CANCELLED)
        self.assertFalse(logic.isRunning())
        self.delayDisplay("Test passed")
