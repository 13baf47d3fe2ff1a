"""DELICAITE hub module: one case from phases to recommendation, a cohort batch panel, the sample case.

The hub walks one case through six numbered steps (phases, segment, correct, slices, features,
recommend), showing which are done, and hands each step to the module or library that does it:
DELICAITE Segment, the Segment Editor, DELICAITE Recommend and DELICAITELib's case engine. The cohort
panel runs `delicaite batch` in a background process (the Logic's BackgroundRunner) with progress and
cancel. Every algorithm lives in DELICAITELib; this file only binds it to Slicer.
"""

import json
import os
import pathlib
import shutil
import tempfile
import time
from typing import Annotated

import qt
import slicer
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

import DELICAITECommon.caseState as caseState
import DELICAITECommon.support as DELICAITESupport
from DELICAITECommon.caseState import STEPS

SAMPLE_NAME = "DELICAITEPhantom"
DEVICE_CHOICES = ["cpu", "auto", "cuda"]
RADIOMICS_ENGINE_ATTRIBUTE = "DELICAITE.RadiomicsEngine"  # on the features table: which engine made it


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
        customDownloader=loadSampleFromSampleData,  # makes and loads the nodes itself: no file type to give
    )


def loadSampleFromSampleData(source):
    """The Sample Data module's loader: the case's packages first (it may be the first thing a user tries)."""
    if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITE"):
        return []
    return list(DELICAITELogic().loadSampleCase())


@parameterNodeWrapper
class DELICAITEParameterNode:
    """What the hub remembers in the scene: the case's nodes and the cohort panel's settings. The case's
    progress (reviewed, slices, features, result) is kept on its segmentation node (caseState)."""

    apVolume: slicer.vtkMRMLScalarVolumeNode
    vpVolume: slicer.vtkMRMLScalarVolumeNode
    segmentation: slicer.vtkMRMLSegmentationNode
    casesDir: pathlib.Path
    outputDir: pathlib.Path
    device: Annotated[str, Choice(DEVICE_CHOICES)] = "cpu"


class DELICAITEWidget(DELICAITESupport.ModuleWidgetSkeleton, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # addObserver / removeObservers
        self.logic = None
        self._updatingGUI = False
        self.layoutKeeper = DELICAITESupport.LayoutKeeper()

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.ui = self.setupModuleUI("UI/DELICAITE.ui")
        self.dependencyPanel = DELICAITESupport.DependencyPanel(self, "DELICAITE")
        self.logic = DELICAITELogic()

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
        self.ui.casesDirSelector.settingKey = "DELICAITE/CohortCasesDir"  # the folders' history, across scenes
        self.ui.outputDirSelector.settingKey = "DELICAITE/CohortOutputDir"
        self.initializeParameterNode()

    def cleanup(self):
        if self.logic:
            self.logic.cancelCohortJob()
        self.removeObservers()

    # ---- case workflow ------------------------------------------------------------------------------

    def caseNodes(self):
        parameters = self._parameterNode
        if parameters is None:
            return None, None, None
        return parameters.apVolume, parameters.vpVolume, parameters.segmentation

    def updateGUI(self, caller=None, event=None):
        if self._updatingGUI:
            return
        self._updatingGUI = True
        try:
            apNode, vpNode, segmentationNode = self.caseNodes()
            self.followCase(segmentationNode)
            status = self.logic.caseStatus(apNode, vpNode, segmentationNode)
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
            for button in (self.ui.correctButton, self.ui.pickSlicesButton, self.ui.recommendButton):
                button.enabled = apNode is not None and segmentationNode is not None
            self.ui.featuresButton.enabled = status["slices"]
            self.ui.recommendResultLabel.text = self.logic.recommendationText(segmentationNode)
            running = self.logic.isCohortJobRunning()
            self.ui.runCohortButton.enabled = not running
            self.ui.cancelCohortButton.enabled = running
        finally:
            self._updatingGUI = False

    def onLoadSample(self):
        if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITE"):
            return
        with slicer.util.tryWithErrorDisplay("Could not load the sample case.", waitCursor=True):
            apNode, vpNode, segmentationNode = self.logic.loadSampleCase()
            self._parameterNode.apVolume = apNode
            self._parameterNode.vpVolume = vpNode
            self._parameterNode.segmentation = segmentationNode

    def onSegment(self):
        self.logic.openModuleWithCase("DELICAITESegment", *self.caseNodes())

    def onCorrect(self):
        apNode, _, segmentationNode = self.caseNodes()
        DELICAITESupport.openSegmentEditor(apNode, segmentationNode)

    def onReviewedToggled(self, checked):
        if self._updatingGUI:
            return
        _, _, segmentationNode = self.caseNodes()
        if segmentationNode is not None:
            self.logic.setReviewed(segmentationNode, checked)
        self.updateGUI()

    def onPickSlices(self):
        if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITE"):
            return
        with slicer.util.tryWithErrorDisplay("Could not pick the slices.", waitCursor=True):
            apNode, _, segmentationNode = self.caseNodes()
            self.logic.pickSlices(apNode, segmentationNode)
            self.updateGUI()

    def onFeatures(self):
        if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITE"):
            return
        with slicer.util.tryWithErrorDisplay("Could not compute the features.", waitCursor=True):
            tableNode = self.logic.computeFeatures(*self.caseNodes())
            if self.layoutKeeper.switchTo(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView):
                slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(tableNode.GetID())
                slicer.app.applicationLogic().PropagateTableSelection()
            self.updateGUI()

    def onRecommend(self):
        self.logic.openModuleWithCase("DELICAITERecommend", *self.caseNodes())

    # ---- cohort -------------------------------------------------------------------------------------

    def onRunCohort(self):
        parameters = self._parameterNode
        casesDir, outDir = DELICAITESupport.pathText(parameters.casesDir), DELICAITESupport.pathText(parameters.outputDir)
        if not casesDir or not outDir:
            slicer.util.errorDisplay("Choose a cases folder and an output folder.")
            return
        if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITE"):
            return
        with slicer.util.tryWithErrorDisplay("Could not start the batch.", waitCursor=True):
            self.ui.casesDirSelector.addCurrentPathToHistory()
            self.ui.outputDirSelector.addCurrentPathToHistory()
            self.ui.cohortLogText.clear()
            self.ui.cohortProgressBar.value = 0
            self.logic.startCohortJob(casesDir, outDir, device=parameters.device, onEvent=self.onCohortEvent,
                                      onDone=self.onCohortDone)
        self.updateGUI()

    def onCohortEvent(self, event):
        self.ui.cohortLogText.appendPlainText(event.message)
        if event.fraction is not None:
            self.ui.cohortProgressBar.value = int(round(100 * event.fraction))

    def onCohortDone(self, job):
        message = job.failure_message()
        if job.cancelled:
            self.ui.cohortLogText.appendPlainText("Batch cancelled: finished cases are kept; Run again resumes.")
        else:
            self.ui.cohortLogText.appendPlainText("Batch finished." if message is None else f"Batch finished: {message}")
            self.ui.cohortProgressBar.value = 100
        self.updateGUI()

    def onCancelCohort(self):
        self.logic.cancelCohortJob()

    # ---- demo ---------------------------------------------------------------------------------------

    def onRunDemo(self):
        if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITE"):
            return
        with slicer.util.tryWithErrorDisplay("Demo case failed.", waitCursor=True):
            result, outDir = self.logic.runDemo()
            report = os.path.join(outDir, "report.html")
            self.ui.demoResultLabel.text = (f"Recommendation: {result.recommendation} "
                                            f"(h = {result.prediction.score.h:+.2f}). Report: {report}")
            qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(report))


class DELICAITELogic(ScriptedLoadableModuleLogic):
    """Whole-case operations on nodes; every computation is DELICAITELib's."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        DELICAITESupport.ensureLibraryOnPath()
        self.sampleFolder = None
        self.runner = DELICAITESupport.BackgroundRunner(pollIntervalMs=250)

    def getParameterNode(self):
        return DELICAITEParameterNode(super().getParameterNode())

    def runDemo(self, outDir=None):
        """Run the library's demo case; returns (CaseResult, output folder)."""
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
    def caseStatus(apNode, vpNode, segmentationNode):
        """Which of the six steps are done: {"phases", "segment", ..., "recommend": bool}, whichever module
        did them (the progress is kept on the segmentation node: caseState)."""
        return caseState.caseStatus(apNode, segmentationNode)

    @staticmethod
    def setReviewed(segmentationNode, reviewed):
        caseState.setReviewed(segmentationNode, reviewed)

    @staticmethod
    def recommendationText(segmentationNode):
        """One line on what DELICAITE Recommend found for this case, read from its result table."""
        table = caseState.derivedNode(segmentationNode, caseState.RESULT_REFERENCE)
        rows = caseState.resultRows(table)
        if not rows:
            return "No recommendation for this case yet."
        text = {quantity: value for quantity, (value, _) in rows.items()}
        return f"{text.get('recommendation', '?')}: h = {text.get('interaction score h', '?')} ({table.GetName()})"

    def pickSlices(self, apNode, segmentationNode):
        """Mark the three largest tumour slices (markups points) and show the largest in the red view."""
        from DELICAITELib.mrml.slices import slice_markups_node

        if apNode is None or segmentationNode is None:
            raise ValueError("select the AP volume and the segmentation first")
        existing = caseState.derivedNode(segmentationNode, caseState.SLICES_REFERENCE)
        markups = slice_markups_node(slicer.mrmlScene, apNode, segmentationNode, node=existing)
        caseState.setDerivedNode(segmentationNode, caseState.SLICES_REFERENCE, markups)
        slicer.modules.markups.logic().JumpSlicesToNthPointInMarkup(markups.GetID(), 0, True)
        return markups

    def computeFeatures(self, apNode, vpNode, segmentationNode, radiomicsEngine="auto"):
        """Radiomics of both phases on the three slices (the case engine's first two stages with the
        bundled radiomics settings), as a table node (feature, value) that records the engine which computed it
        (attribute RADIOMICS_ENGINE_ATTRIBUTE, e.g. "mirp 2.5.0"). ``radiomicsEngine``: auto (the one installed,
        pyradiomics first), pyradiomics or mirp, as `delicaite cohort features` takes it."""
        import pandas as pd
        from DELICAITELib import mrml
        from DELICAITELib.case import CaseEngine
        from DELICAITELib.features.spec import FeatureSpec
        from DELICAITELib.mrml.results import table_node_from_frame

        images = mrml.images_from_case_nodes(apNode, vpNode, segmentationNode)
        engine = CaseEngine(feature_spec=FeatureSpec.from_options(radiomics_engine=radiomicsEngine))
        features = engine.features(engine.prepare(images.ap, images.vp, images.label)).values
        frame = pd.DataFrame({"feature": pd.Series(list(features), dtype=object),
                              "value": pd.Series([float(v) for v in features.values()], dtype=float)})
        tableNode = table_node_from_frame(slicer.mrmlScene, frame, "DELICAITE features",
                                          node=caseState.derivedNode(segmentationNode, caseState.FEATURES_REFERENCE))
        caseState.setDerivedNode(segmentationNode, caseState.FEATURES_REFERENCE, tableNode)
        tableNode.SetAttribute(RADIOMICS_ENGINE_ATTRIBUTE, engine.feature_spec.radiomics_engine or "")
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

    def startCohortJob(self, casesDir, outDir, device="cpu", modelPath=None, onEvent=None, onDone=None):
        """Start `delicaite batch CASES --out OUT` in a background process (PythonSlicer); returns the job.

        ``onEvent(ProgressEvent)`` gets each line, the fraction of the whole batch when it says one;
        ``onDone(job)`` runs once when the batch has ended (done, failed or cancelled)."""
        from DELICAITELib import jobs

        return self.runner.start(jobs.batch_job(casesDir, outDir, device=device, model=modelPath), onEvent, onDone)

    def isCohortJobRunning(self):
        return self.runner.isRunning()

    def cancelCohortJob(self):
        self.runner.cancel()


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

        self.assertTrue(DELICAITESupport.ensureLibrary(moduleName="DELICAITE"))
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

        status = logic.caseStatus(apNode, vpNode, segmentationNode)
        self.assertEqual([s for s in STEPS if status[s]], ["phases", "segment"])
        logic.setReviewed(segmentationNode, True)
        markups = logic.pickSlices(apNode, segmentationNode)
        self.assertEqual(markups.GetNumberOfControlPoints(), 3)
        self.delayDisplay("Radiomics of both phases on the three slices")
        features = logic.computeFeatures(apNode, vpNode, segmentationNode)
        self.assertGreater(features.GetNumberOfRows(), 10)
        status = logic.caseStatus(apNode, vpNode, segmentationNode)
        self.assertEqual([s for s in STEPS if not status[s]], ["recommend"])

        self.delayDisplay("The hub's parameter node keeps the case; a new automatic mask waits for a new review")
        parameters = logic.getParameterNode()
        parameters.segmentation = segmentationNode
        self.assertIs(parameters.segmentation, segmentationNode)
        caseState.maskReplaced(segmentationNode)
        status = logic.caseStatus(apNode, vpNode, segmentationNode)
        self.assertEqual([s for s in STEPS if status[s]], ["phases", "segment"])
        self.assertIsNotNone(slicer.mrmlScene.GetNodeByID(markups.GetID()))  # lapsed, not deleted

    def test_demo_case(self):
        self.assertTrue(DELICAITESupport.ensureLibrary(moduleName="DELICAITE"))
        self.delayDisplay("Running the demo case through the core library")
        result, _ = DELICAITELogic().runDemo(self.workFolder)
        self.assertIn(result.recommendation, ("TACE", "HAIC", "no clear preference"))
        self.assertEqual(len(result.slices), 3)
        self.assertTrue(os.path.exists(os.path.join(self.workFolder, "report.png")))

    def test_batch_on_sample_cases(self):
        from DELICAITELib.batch import find_cases, process_cases
        from DELICAITELib.demo import write_demo_inputs

        self.assertTrue(DELICAITESupport.ensureLibrary(moduleName="DELICAITE"))
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
        logic, events, finished = DELICAITELogic(), [], []
        logic.startCohortJob(cases, out, onEvent=events.append, onDone=finished.append)
        deadline = time.time() + 300
        while not finished:
            self.assertLess(time.time(), deadline, "the background batch never reported back")
            slicer.app.processEvents()
            time.sleep(0.05)
        self.assertIsNone(finished[0].failure_message())
        self.assertEqual(sum("already done, skipped" in event.message for event in events), 2)
        self.assertEqual([e.fraction for e in events if e.fraction is not None][-1], 1.0)
