"""DELICAITE hub module: one case from phases to recommendation, a cohort batch panel, the sample case.

The hub walks one case through six numbered steps (phases, segment, correct, slices, features,
recommend), showing which are done, and hands each step to the module or library that does it:
DELICAITE Segment, the Segment Editor, DELICAITE Recommend and DELICAITELib. The cohort panel runs
`delicaite batch` in a background process with progress and cancel. Every algorithm lives in
DELICAITELib; this file only binds it to Slicer.
"""

import json
import os
import re
import shutil
import tempfile

import qt
import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

SAMPLE_NAME = "DELICAITEPhantom"
STEPS = ("phases", "segment", "correct", "slices", "features", "recommend")
# Stored on the segmentation node, so the status survives saving the scene.
REVIEWED_ATTRIBUTE = "DELICAITE.Reviewed"
SLICES_REFERENCE = "DELICAITESlices"
FEATURES_REFERENCE = "DELICAITEFeatures"
RESULT_TABLE_NAME = "DELICAITE result"  # the name DELICAITE Recommend gives its result table
# "[case 2/5] name: message", as DELICAITELib.batch prints its progress.
CASE_PROGRESS = re.compile(r"^\[case (\d+)/(\d+)\] .*?: (.*)$")
CASE_FINISHED = ("done", "skipped", "error")


class DELICAITE(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "DELICAITE"
        self.parent.categories = ["DELICAITE"]
        self.parent.dependencies = []
        self.parent.contributors = ["DELICAITE developers"]
        self.parent.helpText = (
            "TACE or HAIC for large hepatocellular carcinoma: a one-page workflow for a case (phases, liver "
            "and tumour segmentation, review, the three largest tumour slices, radiomics, the interaction "
            "model) and a batch panel for a cohort. Research use only; the bundled model is a demo trained on "
            "a simulated cohort."
        )
        self.parent.acknowledgementText = "Method: An C, Li L, Luo Y, et al., J Hepatocell Carcinoma."
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """Add the synthetic phantom case to the Sample Data module (made on demand: nothing to download)."""
    import SampleData

    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="DELICAITE",
        sampleName=SAMPLE_NAME,
        uris=["delicaite:phantom"],  # never fetched: the custom downloader writes the case itself
        fileNames=["phantom_ap.nii.gz"],
        nodeNames=["DELICAITE phantom AP"],
        thumbnailFileName=os.path.join(os.path.dirname(__file__), "Resources", "Icons", "DELICAITE.png"),
        loadFileType=["VolumeFile"],
        customDownloader=lambda source: DELICAITELogic().loadSampleCase(),
    )


def _libraryReady(parentWidget=None):
    """Install the library's dependencies on first use (asks first); False when the user declines."""
    from DELICAITEDependencies import ensureDependencies

    return ensureDependencies(parentWidget)


class DELICAITEWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # addObserver / removeObservers
        self.logic = None
        self.cohortJob = None
        self.cohortTimer = None
        self._updatingGUI = False

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/DELICAITE.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = DELICAITELogic()

        for selector in (self.ui.apVolumeSelector, self.ui.vpVolumeSelector, self.ui.segmentationSelector,
                         self.ui.resultTableSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateStatus)
        self.ui.loadSampleButton.connect("clicked(bool)", self.onLoadSample)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegment)
        self.ui.correctButton.connect("clicked(bool)", self.onCorrect)
        self.ui.reviewedCheckBox.connect("toggled(bool)", self.onReviewedToggled)
        self.ui.pickSlicesButton.connect("clicked(bool)", self.onPickSlices)
        self.ui.featuresButton.connect("clicked(bool)", self.onFeatures)
        self.ui.recommendButton.connect("clicked(bool)", self.onRecommend)
        self.ui.runCohortButton.connect("clicked(bool)", self.onRunCohort)
        self.ui.cancelCohortButton.connect("clicked(bool)", self.onCancelCohort)
        self.ui.runDemoButton.connect("clicked(bool)", self.onRunDemo)
        self.ui.casesDirSelector.settingKey = "DELICAITE/CohortCasesDir"
        self.ui.outputDirSelector.settingKey = "DELICAITE/CohortOutputDir"
        self.ui.cancelCohortButton.enabled = False

        self.cohortTimer = qt.QTimer()
        self.cohortTimer.setInterval(250)
        self.cohortTimer.connect("timeout()", self.pollCohortJob)
        # A result table added by DELICAITE Recommend shows up in step 6 without a click here.
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneClosed)
        self.updateStatus()

    def cleanup(self):
        self.removeObservers()
        if self.cohortJob is not None and self.cohortJob.running:
            self.cohortJob.cancel()
        if self.cohortTimer is not None:
            self.cohortTimer.stop()

    def enter(self):
        self.updateStatus()

    # ---- case workflow ------------------------------------------------------------------------------

    def caseNodes(self):
        return (self.ui.apVolumeSelector.currentNode(), self.ui.vpVolumeSelector.currentNode(),
                self.ui.segmentationSelector.currentNode())

    def updateStatus(self, caller=None, event=None):
        if self._updatingGUI:
            return
        self._updatingGUI = True
        try:
            apNode, vpNode, segmentationNode = self.caseNodes()
            status = self.logic.caseStatus(apNode, vpNode, segmentationNode, self.ui.resultTableSelector.currentNode())
            for step in STEPS:
                getattr(self.ui, step + "StatusLabel").text = "done \u2713" if status[step] else "to do"
            if apNode is None:
                self.ui.phaseCheckLabel.text = "Select the arterial-phase CT."
            elif vpNode is None or vpNode is apNode:
                self.ui.phaseCheckLabel.text = "No portal-venous phase: single-phase (AP used for both phases)."
            else:
                self.ui.phaseCheckLabel.text = "Two phases: VP is resampled onto the AP grid when they differ."
            self.ui.reviewedCheckBox.checked = status["correct"]
            self.ui.reviewedCheckBox.enabled = segmentationNode is not None
            self.ui.segmentButton.enabled = apNode is not None
            for button in (self.ui.correctButton, self.ui.pickSlicesButton):
                button.enabled = apNode is not None and segmentationNode is not None
            self.ui.featuresButton.enabled = status["slices"]
            self.ui.recommendButton.enabled = apNode is not None and segmentationNode is not None
        finally:
            self._updatingGUI = False

    def onNodeAdded(self, caller, event):
        # Wait until the adding module has filled the node in, then look for a new result table.
        qt.QTimer.singleShot(0, self.selectNewestResultTable)

    def selectNewestResultTable(self):
        tables = [n for n in slicer.util.getNodesByClass("vtkMRMLTableNode") if n.GetName().startswith(RESULT_TABLE_NAME)]
        if tables and self.ui.resultTableSelector.currentNode() is not tables[-1]:
            self.ui.resultTableSelector.setCurrentNode(tables[-1])
        self.updateStatus()

    def onSceneClosed(self, caller, event):
        self.updateStatus()

    def onLoadSample(self):
        if not _libraryReady(slicer.util.mainWindow()):
            return
        with slicer.util.tryWithErrorDisplay("Could not load the sample case.", waitCursor=True):
            apNode, vpNode, segmentationNode = self.logic.loadSampleCase()
            self.ui.apVolumeSelector.setCurrentNode(apNode)
            self.ui.vpVolumeSelector.setCurrentNode(vpNode)
            self.ui.segmentationSelector.setCurrentNode(segmentationNode)
            self.updateStatus()

    def onSegment(self):
        self.logic.openModuleWithCase("DELICAITESegment", *self.caseNodes())

    def onCorrect(self):
        apNode, _, segmentationNode = self.caseNodes()
        self.logic.openSegmentEditor(apNode, segmentationNode)

    def onReviewedToggled(self, checked):
        if self._updatingGUI:
            return
        segmentationNode = self.ui.segmentationSelector.currentNode()
        if segmentationNode is not None:
            self.logic.setReviewed(segmentationNode, checked)
        self.updateStatus()

    def onPickSlices(self):
        if not _libraryReady(slicer.util.mainWindow()):
            return
        with slicer.util.tryWithErrorDisplay("Could not pick the slices.", waitCursor=True):
            apNode, _, segmentationNode = self.caseNodes()
            self.logic.pickSlices(apNode, segmentationNode)
            self.updateStatus()

    def onFeatures(self):
        if not _libraryReady(slicer.util.mainWindow()):
            return
        with slicer.util.tryWithErrorDisplay("Could not compute the features.", waitCursor=True):
            tableNode = self.logic.computeFeatures(*self.caseNodes())
            slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
            slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(tableNode.GetID())
            slicer.app.applicationLogic().PropagateTableSelection()
            self.updateStatus()

    def onRecommend(self):
        self.logic.openModuleWithCase("DELICAITERecommend", *self.caseNodes())

    # ---- cohort -------------------------------------------------------------------------------------

    def onRunCohort(self):
        casesDir, outDir = self.ui.casesDirSelector.currentPath, self.ui.outputDirSelector.currentPath
        if not casesDir or not outDir:
            slicer.util.errorDisplay("Choose a cases folder and an output folder.")
            return
        if not _libraryReady(slicer.util.mainWindow()):
            return
        with slicer.util.tryWithErrorDisplay("Could not start the batch.", waitCursor=True):
            self.ui.casesDirSelector.addCurrentPathToHistory()
            self.ui.outputDirSelector.addCurrentPathToHistory()
            self.ui.cohortLogText.clear()
            self.ui.cohortProgressBar.value = 0
            self.cohortJob = self.logic.startCohortJob(casesDir, outDir, device=self.ui.deviceComboBox.currentText)
            self.ui.runCohortButton.enabled = False
            self.ui.cancelCohortButton.enabled = True
            self.cohortTimer.start()

    def pollCohortJob(self):
        job = self.cohortJob
        if job is None:
            self.cohortTimer.stop()
            return
        for line in job.poll():
            self.ui.cohortLogText.appendPlainText(line)
            fraction = DELICAITELogic.cohortProgress(line)
            if fraction is not None:
                self.ui.cohortProgressBar.value = int(round(100 * fraction))
        if job.running:
            return
        self.cohortTimer.stop()
        job.wait(5)
        for line in job.poll():
            self.ui.cohortLogText.appendPlainText(line)
        message = job.failure_message()
        if job.cancelled:
            self.ui.cohortLogText.appendPlainText("Batch cancelled: finished cases are kept; Run again resumes.")
        else:
            self.ui.cohortLogText.appendPlainText("Batch finished." if message is None else f"Batch finished: {message}")
            self.ui.cohortProgressBar.value = 100
        self.ui.runCohortButton.enabled = True
        self.ui.cancelCohortButton.enabled = False
        self.cohortJob = None

    def onCancelCohort(self):
        if self.cohortJob is not None:
            self.cohortJob.cancel()
            self.pollCohortJob()

    # ---- demo ---------------------------------------------------------------------------------------

    def onRunDemo(self):
        if not _libraryReady(slicer.util.mainWindow()):
            return
        with slicer.util.tryWithErrorDisplay("Demo case failed.", waitCursor=True):
            result, outDir = self.logic.runDemo()
            report = os.path.join(outDir, "report.html")
            self.ui.demoResultLabel.text = (
                f"Recommendation: {result['recommendation']} (h = {result['interaction_score']['h']:+.2f}). "
                f"Report: {report}")
            qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(report))


class DELICAITELogic(ScriptedLoadableModuleLogic):
    """Whole-case operations on nodes; every computation is DELICAITELib's."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.sampleFolder = None

    def runDemo(self, outDir=None):
        """Run the library's demo case; returns (result dict, output folder)."""
        from DELICAITELib.demo import run_demo

        outDir = outDir or tempfile.mkdtemp(prefix="DELICAITE-demo-")
        return run_demo(outDir), outDir

    def loadSampleCase(self):
        """Write the synthetic two-phase phantom case to a temporary folder and load it.

        Returns (AP volume node, VP volume node, segmentation node with "Liver" and "Tumor"); the
        folder (with clinical.json, a made-up record) is kept in ``self.sampleFolder``.
        """
        from DELICAITELib import mrml
        from DELICAITELib.demo import write_demo_inputs
        from DELICAITELib.io import read_label

        self.sampleFolder = tempfile.mkdtemp(prefix="DELICAITE-sample-")
        paths = write_demo_inputs(self.sampleFolder)
        apNode = slicer.util.loadVolume(str(paths["ap"]), {"name": "DELICAITE phantom AP", "show": True})
        vpNode = slicer.util.loadVolume(str(paths["vp"]), {"name": "DELICAITE phantom VP", "show": False})
        label = read_label(paths["mask"])
        segmentationNode = mrml.segmentation_node_from_label(slicer.mrmlScene, label, apNode,
                                                             "DELICAITE phantom segmentation")
        segmentationNode.SetAttribute("DELICAITE.ClinicalFile", str(paths["clinical"]))
        return apNode, vpNode, segmentationNode

    @staticmethod
    def caseStatus(apNode, vpNode, segmentationNode, resultTableNode):
        """Which of the six steps are done: {"phases", "segment", ..., "recommend": bool}."""
        segments = segmentationNode.GetSegmentation() if segmentationNode is not None else None
        slicesNode = segmentationNode.GetNodeReference(SLICES_REFERENCE) if segmentationNode is not None else None
        featuresNode = segmentationNode.GetNodeReference(FEATURES_REFERENCE) if segmentationNode is not None else None
        return {
            "phases": apNode is not None,  # VP is optional (single-phase)
            "segment": segments is not None and segments.GetSegmentIdBySegmentName("Tumor") != "",
            "correct": segmentationNode is not None and segmentationNode.GetAttribute(REVIEWED_ATTRIBUTE) == "true",
            "slices": slicesNode is not None and slicesNode.GetNumberOfControlPoints() > 0,
            "features": featuresNode is not None and featuresNode.GetNumberOfRows() > 0,
            "recommend": resultTableNode is not None and resultTableNode.GetNumberOfRows() > 0,
        }

    @staticmethod
    def setReviewed(segmentationNode, reviewed):
        segmentationNode.SetAttribute(REVIEWED_ATTRIBUTE, "true" if reviewed else "false")

    def pickSlices(self, apNode, segmentationNode):
        """Mark the three largest tumour slices (markups points) and show the largest in the red view."""
        from DELICAITELib.mrml.slices import slice_markups_node

        if apNode is None or segmentationNode is None:
            raise ValueError("select the AP volume and the segmentation first")
        existing = segmentationNode.GetNodeReference(SLICES_REFERENCE)
        markups = slice_markups_node(slicer.mrmlScene, apNode, segmentationNode, node=existing)
        segmentationNode.SetNodeReferenceID(SLICES_REFERENCE, markups.GetID())
        slicer.modules.markups.logic().JumpSlicesToNthPointInMarkup(markups.GetID(), 0, True)
        return markups

    def computeFeatures(self, apNode, vpNode, segmentationNode):
        """Radiomics of both phases on the three slices, as a table node (feature, value)."""
        import pandas as pd

        from DELICAITELib import mrml
        from DELICAITELib.features import extract_radiomics
        from DELICAITELib.io import load_case
        from DELICAITELib.mrml.results import table_node_from_frame
        from DELICAITELib.slices import largest_tumour_slices

        ap = mrml.image_from_volume_node(apNode)
        vp = ap if vpNode is None or vpNode is apNode else mrml.image_from_volume_node(vpNode)
        case = load_case(ap, vp, mrml.label_from_segmentation_node(segmentationNode, apNode))
        indices = [s.index for s in largest_tumour_slices(case.label)]
        features = extract_radiomics({"AP": case.ap, "VP": case.vp}, case.label, indices)
        frame = pd.DataFrame({"feature": pd.Series(list(features), dtype=object),
                              "value": pd.Series([float(v) for v in features.values()], dtype=float)})
        tableNode = table_node_from_frame(slicer.mrmlScene, frame, "DELICAITE features",
                                          node=segmentationNode.GetNodeReference(FEATURES_REFERENCE))
        segmentationNode.SetNodeReferenceID(FEATURES_REFERENCE, tableNode.GetID())
        return tableNode

    @staticmethod
    def openModuleWithCase(moduleName, apNode, vpNode, segmentationNode):
        """Switch to a DELICAITE module and hand it this case's nodes."""
        slicer.util.selectModule(moduleName)
        widget = slicer.util.getModuleWidget(moduleName)
        setCaseNodes = getattr(widget, "setCaseNodes", None)
        if setCaseNodes is not None:
            setCaseNodes(apNode, vpNode, segmentationNode)
            return
        # Modules without setCaseNodes: fill the selectors they are known to have.
        ui = getattr(widget, "ui", None)
        for names, node in ((("apVolumeSelector", "inputVolumeSelector"), apNode), (("vpVolumeSelector",), vpNode),
                            (("segmentationSelector", "outputSegmentationSelector"), segmentationNode)):
            selector = next((getattr(ui, n) for n in names if hasattr(ui, n)), None)
            if selector is not None and node is not None:
                selector.setCurrentNode(node)

    @staticmethod
    def openSegmentEditor(apNode, segmentationNode):
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.util.getModuleWidget("SegmentEditor").editor
        editor.setSegmentationNode(segmentationNode)
        if hasattr(editor, "setSourceVolumeNode"):  # Slicer >= 5.2 ("master" before)
            editor.setSourceVolumeNode(apNode)
        else:
            editor.setMasterVolumeNode(apNode)

    @staticmethod
    def startCohortJob(casesDir, outDir, device="cpu", modelPath=None):
        """Start `delicaite batch CASES --out OUT` in a background process (PythonSlicer); returns the job."""
        from DELICAITELib.jobs import BackgroundJob

        args = ["batch", str(casesDir), "--out", str(outDir), "--device", device]
        if modelPath:
            args += ["--model", str(modelPath)]
        return BackgroundJob(args).start()

    @staticmethod
    def cohortProgress(line):
        """Fraction of the batch done when ``line`` is printed, or None for lines that do not say."""
        match = CASE_PROGRESS.match(line)
        if not match:
            return None
        number, total, message = int(match.group(1)), int(match.group(2)), match.group(3)
        finished = message.split(" ", 1)[0] in CASE_FINISHED
        return (number - (0 if finished else 1)) / total


class DELICAITETest(ScriptedLoadableModuleTest):
    """Runs inside Slicer: the sample case, the step statuses, the demo case and a tiny batch."""

    def setUp(self):
        slicer.mrmlScene.Clear()
        self.workFolder = tempfile.mkdtemp(prefix="DELICAITE-test-")

    def tearDown(self):
        shutil.rmtree(self.workFolder, ignore_errors=True)

    def runTest(self):
        self.setUp()
        self.test_sample_case_and_steps()
        self.setUp()
        self.test_demo_case()
        self.setUp()
        self.test_batch_on_sample_cases()
        self.tearDown()
        self.delayDisplay("DELICAITE tests passed")

    def test_sample_case_and_steps(self):
        import SimpleITK as sitk

        from DELICAITELib import mrml

        self.assertTrue(_libraryReady())
        self.delayDisplay("Loading the sample case (synthetic phantom)")
        registerSampleData()
        logic = DELICAITELogic()
        apNode, vpNode, segmentationNode = logic.loadSampleCase()
        self.assertIsNotNone(apNode)
        self.assertIsNotNone(vpNode)
        self.assertIsNotNone(segmentationNode)
        # The volume node holds the file's voxels and geometry exactly (LPS on disk, RAS in the scene).
        written = sitk.ReadImage(os.path.join(logic.sampleFolder, "phantom_ap.nii.gz"))
        loaded = mrml.image_from_volume_node(apNode)
        self.assertEqual(loaded.GetSize(), written.GetSize())
        for a, b in zip(loaded.GetSpacing() + loaded.GetOrigin(), written.GetSpacing() + written.GetOrigin()):
            self.assertAlmostEqual(a, b, places=3)
        segmentation = segmentationNode.GetSegmentation()
        self.assertEqual({segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())},
                         {"Liver", "Tumor"})

        status = logic.caseStatus(apNode, vpNode, segmentationNode, None)
        self.assertEqual([s for s in STEPS if status[s]], ["phases", "segment"])
        logic.setReviewed(segmentationNode, True)
        markups = logic.pickSlices(apNode, segmentationNode)
        self.assertEqual(markups.GetNumberOfControlPoints(), 3)
        self.delayDisplay("Radiomics of both phases on the three slices")
        features = logic.computeFeatures(apNode, vpNode, segmentationNode)
        self.assertGreater(features.GetNumberOfRows(), 10)
        status = logic.caseStatus(apNode, vpNode, segmentationNode, None)
        self.assertEqual([s for s in STEPS if not status[s]], ["recommend"])
        self.assertEqual(logic.cohortProgress("[case 2/4] a: done"), 0.5)
        self.assertEqual(logic.cohortProgress("[case 2/4] a: loading both phases"), 0.25)

    def test_demo_case(self):
        self.assertTrue(_libraryReady())
        self.delayDisplay("Running the demo case through the core library")
        result, _ = DELICAITELogic().runDemo(self.workFolder)
        self.assertIn(result["recommendation"], ("TACE", "HAIC", "no clear preference"))
        self.assertEqual(len(result["slices"]), 3)
        self.assertTrue(os.path.exists(os.path.join(self.workFolder, "report.png")))

    def test_batch_on_sample_cases(self):
        from DELICAITELib.batch import find_cases, process_cases
        from DELICAITELib.demo import write_demo_inputs

        self.assertTrue(_libraryReady())
        self.delayDisplay("A tiny batch: the sample case with and without covariates")
        cases = os.path.join(self.workFolder, "cases")
        for name, withClinical in (("full", True), ("slices-only", False)):
            paths = write_demo_inputs(os.path.join(cases, name))
            for role in ("ap", "vp", "mask"):
                os.rename(paths[role], os.path.join(cases, name, f"{role}.nii.gz"))
            if not withClinical:
                os.remove(paths["clinical"])
        out = os.path.join(self.workFolder, "out")
        rows = process_cases(find_cases(cases), out)
        self.assertEqual([(r["case"], r["status"]) for r in rows], [("full", "done"), ("slices-only", "done")])
        for name, kind in (("full", "full_case"), ("slices-only", "slices_only")):
            with open(os.path.join(out, name, "result.json"), encoding="utf-8") as handle:
                result = json.load(handle)
            self.assertEqual(result["kind"], kind)
            self.assertEqual(len(result["slices"]), 3)
            if kind == "full_case":
                self.assertIn(result["recommendation"], ("TACE", "HAIC", "no clear preference"))

        self.delayDisplay("The same batch as a background job (PythonSlicer): every case resumes as done")
        job = DELICAITELogic.startCohortJob(cases, out)
        self.assertEqual(job.wait(300), 0, job.failure_message())
        self.assertEqual(sum("already done, skipped" in line for line in job.output), 2)
