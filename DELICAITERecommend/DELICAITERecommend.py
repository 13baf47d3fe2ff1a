"""DELICAITERecommend: P(PD | TACE), P(PD | HAIC), the interaction score h and the recommendation for one
patient, from the CT phases and segmentation in the scene and a clinical form.

Thin module: the case runs in DELICAITELib's case engine (in a background process from the panel, in
this process from scripts and the self-test) and DELICAITELib.mrml turns its typed result into table
and chart nodes. The Widget binds the .ui to a typed parameter node, builds the clinical form from the
covariate schema and shows the result beside the slice view.
"""

import json
import os
import pathlib
import shutil
import tempfile

import qt
import slicer
from slicer.parameterNodeWrapper import parameterNodeWrapper
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
from DELICAITECommon.clinicalForm import ClinicalForm

# A layout with the red slice view and a plot view side by side (an id no standard layout uses).
CHART_LAYOUT_ID = 15701
CHART_LAYOUT_XML = """
<layout type="horizontal" split="true">
 <item splitSize="600">
  <view class="vtkMRMLSliceNode" singletontag="Red">
   <property name="orientation" action="default">Axial</property>
   <property name="viewlabel" action="default">R</property>
   <property name="viewcolor" action="default">#F34A33</property>
  </view>
 </item>
 <item splitSize="400">
  <view class="vtkMRMLPlotViewNode" singletontag="PlotView1">
   <property name="viewlabel" action="default">P</property>
  </view>
 </item>
</layout>
"""


class DELICAITERecommend(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "DELICAITE Recommend"
        self.parent.categories = ["DELICAITE"]
        self.parent.dependencies = ["DELICAITE"]  # the hub module carries DELICAITELib
        self.parent.contributors = ["DELICAITE developers"]
        self.parent.helpText = (
            "Predicted risk of progressive disease (PD) under TACE and under HAIC for one patient with large "
            "hepatocellular carcinoma, the interaction score h = logit P(PD | HAIC) − logit P(PD | TACE) with its "
            "ensemble spread (how much the model's members disagree; not a confidence interval), and the therapy it favours. Inputs: the arterial and portal-venous CT phases, a "
            "reviewed liver/tumour segmentation (segments Liver and Tumor), and the clinical covariates in the units "
            "shown. Research use only: the bundled model is a demo trained on a simulated cohort."
        )
        self.parent.acknowledgementText = "Method: An C, Li L, Luo Y, et al., J Hepatocell Carcinoma."


@parameterNodeWrapper
class DELICAITERecommendParameterNode:
    """What the module remembers in the scene: the case's nodes, the model folder, the clinical form as typed
    (field name -> text; a checkbox "true"/"false") and the last result's nodes and output folder."""

    apVolume: slicer.vtkMRMLScalarVolumeNode
    vpVolume: slicer.vtkMRMLScalarVolumeNode
    segmentation: slicer.vtkMRMLSegmentationNode
    modelPath: pathlib.Path
    clinicalForm: dict[str, str]
    resultTable: slicer.vtkMRMLTableNode
    driversTable: slicer.vtkMRMLTableNode
    riskTable: slicer.vtkMRMLTableNode
    riskChart: slicer.vtkMRMLPlotChartNode
    driversChart: slicer.vtkMRMLPlotChartNode
    outputFolder: pathlib.Path


# DELICAITELib.mrml.result_nodes' keys -> the parameter node's fields
RESULT_NODE_FIELDS = {"result_table": "resultTable", "drivers_table": "driversTable", "risk_table": "riskTable",
                      "risk_chart": "riskChart", "drivers_chart": "driversChart"}


class DELICAITERecommendWidget(DELICAITESupport.ModuleWidgetSkeleton, ScriptedLoadableModuleWidget,
                                VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.form = None         # the clinical form: built once DELICAITELib's packages import
        self._replacing = None   # the case's result table before this computation (replaced once it is done)
        self.layoutKeeper = DELICAITESupport.LayoutKeeper()

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.ui = self.setupModuleUI("UI/DELICAITERecommend.ui")
        self.logic = DELICAITERecommendLogic()
        # The panel is whole without the packages; the clinical form needs DELICAITELib, so it is built
        # once they import (at once, or after Install dependencies).
        self.dependencyPanel = DELICAITESupport.DependencyPanel(self, "DELICAITERecommend", onReady=self.onPackagesReady)
        self.ui.fillDemoPatientButton.connect("clicked(bool)", self.onFillDemoPatient)
        self.ui.clearClinicalButton.connect("clicked(bool)", self.onClearClinical)
        self.ui.computeButton.connect("clicked(bool)", self.onComputeButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.showChartButton.connect("clicked(bool)", self.onShowChartButton)
        self.ui.exportReportButton.connect("clicked(bool)", self.onExportReportButton)
        self.initializeParameterNode()

    def cleanup(self):
        if self.logic:
            self.logic.cancel()
        self.removeObservers()

    # --- the parameter node ----------------------------------------------------------------------------

    def onParameterNodeReady(self):
        if not self.modelPath() and self.form:  # the demo model's folder needs DELICAITELib
            self._parameterNode.modelPath = pathlib.Path(self.logic.demoModelPath())
        if self.form and self._parameterNode.clinicalForm:
            self.form.restore(self._parameterNode.clinicalForm)
        self._showResultTable(self._parameterNode.resultTable)

    def resultNodes(self):
        """The last result's nodes, kept in the parameter node: {} when there is none."""
        parameters = self._parameterNode
        if parameters is None or parameters.resultTable is None:
            return {}
        return {key: getattr(parameters, field) for key, field in RESULT_NODE_FIELDS.items()}

    def modelPath(self):
        """The chosen model folder as text; "" when none is chosen."""
        return DELICAITESupport.pathText(self._parameterNode.modelPath if self._parameterNode else None)

    def setCaseNodes(self, apNode, vpNode, segmentationNode):
        """Called by the DELICAITE hub: this case's nodes."""
        self.initializeParameterNode()
        self._parameterNode.apVolume = apNode
        self._parameterNode.vpVolume = vpNode
        self._parameterNode.segmentation = segmentationNode

    def updateGUI(self, caller=None, event=None):
        parameters = self._parameterNode
        busy = self.logic.isRunning()
        ready = bool(parameters and parameters.apVolume and parameters.segmentation and self.modelPath())
        self.ui.computeButton.enabled = ready and self.form is not None and not busy
        self.ui.fillDemoPatientButton.enabled = self.ui.clearClinicalButton.enabled = self.form is not None
        self.ui.cancelButton.enabled = busy
        self.ui.showChartButton.enabled = bool(self.resultNodes()) and not busy
        self.ui.exportReportButton.enabled = self._outputFolder() is not None and not busy
        self.ui.demoModelLabel.visible = self.form is not None and self.logic.isDemoModel(self.modelPath())
        self.followCase(parameters.segmentation if parameters else None)
        self.ui.reviewStatusLabel.text = self.logic.reviewLine(parameters.segmentation if parameters else None)

    def beforeSceneClose(self):
        self.logic.cancel()

    def afterSceneClose(self):
        self._showResultTable(None)

    # --- the clinical form ---------------------------------------------------------------------------

    def onPackagesReady(self):
        self.form = ClinicalForm(self.ui.clinicalFormGroupBox.layout(), onChanged=self._saveForm)
        if self._parameterNode:
            self.onParameterNodeReady()
            self.updateGUI()

    def formValues(self):
        return self.form.values()

    def _saveForm(self):
        if self._parameterNode is not None:
            self._parameterNode.clinicalForm = self.form.savedValues()

    def onFillDemoPatient(self):
        from DELICAITELib.clinical.form import form_values
        from DELICAITELib.demo import DEMO_CLINICAL

        self.form.setValues(form_values(DEMO_CLINICAL))

    def onClearClinical(self):
        from DELICAITELib.clinical.form import form_values

        self.form.setValues(form_values({}))

    # --- compute (in a background process) ---------------------------------------------------------------

    def onComputeButton(self):
        if not DELICAITESupport.ensureLibrary(slicer.util.mainWindow(), "DELICAITERecommend"):
            return
        from DELICAITELib.clinical.form import record_from_form

        problems = self.form.checkAll()
        if problems:
            slicer.util.errorDisplay("Please correct the clinical data first:\n\n" + "\n".join(problems))
            return
        parameters = self._parameterNode
        if not caseState.isReviewed(parameters.segmentation) and not slicer.util.confirmOkCancelDisplay(
                f"{self.logic.reviewLine(parameters.segmentation)}\n\nThe recommendation rests on the tumour slices "
                "of this segmentation. Compute anyway?", windowTitle="Segmentation not reviewed"):
            return
        with slicer.util.tryWithErrorDisplay("Could not start the computation.", waitCursor=True):
            self._replacing = caseState.derivedNode(parameters.segmentation, caseState.RESULT_REFERENCE)
            self.ui.progressBar.value = 0
            self.ui.statusLabel.text = "Starting..."
            self.logic.computeInBackground(parameters.apVolume, parameters.vpVolume, parameters.segmentation,
                                           record_from_form(self.formValues()), self.modelPath(),
                                           onEvent=self.onProgress, onDone=self.onComputeDone)
        self.updateGUI()

    def onProgress(self, event):
        self.ui.statusLabel.text = event.message
        if event.fraction is not None:
            self.ui.progressBar.value = int(round(100 * event.fraction))

    def onCancelButton(self):
        self.ui.statusLabel.text = "Cancelling..."
        self.logic.cancel()

    def onComputeDone(self, result, nodes, failure):
        """The background case ended: show its result, or say why there is none."""
        self.updateGUI()
        if failure is not None:
            self.ui.progressBar.value = 0
            self.ui.statusLabel.text = ("Cancelled; nothing was added to the scene." if failure == self.logic.CANCELLED
                                        else f"Failed: {failure}")
            if failure != self.logic.CANCELLED:
                slicer.util.errorDisplay(f"Computing the recommendation failed: {failure}")
            return
        parameters = self._parameterNode
        previous = self.resultNodes()
        if previous and previous["result_table"] is self._replacing:  # one result per case, replaced when complete
            self.logic.removeResultNodes(previous)
        for key, field in RESULT_NODE_FIELDS.items():
            setattr(parameters, field, nodes[key])
        parameters.outputFolder = pathlib.Path(self.logic.lastOutDir)
        self._showResult(result, nodes)
        self.updateGUI()

    def _outputFolder(self):
        folder = DELICAITESupport.pathText(self._parameterNode.outputFolder if self._parameterNode else None)
        return folder if folder and os.path.isdir(folder) else None

    def _showResultTable(self, tableNode):
        """The result's four lines and table from its table node (so a saved scene shows them again)."""
        values = self.logic.resultValues(tableNode)
        self.ui.resultTableView.setMRMLTableNode(tableNode if values else None)
        if not values:
            for label in (self.ui.pTaceValueLabel, self.ui.pHaicValueLabel, self.ui.hValueLabel,
                          self.ui.recommendationValueLabel):
                label.text = "–"
            return
        number = {quantity: value[1] for quantity, value in values.items()}
        text = {quantity: value[0] for quantity, value in values.items()}
        self.ui.pTaceValueLabel.text = f"{number['P(PD | TACE)']:.1%}"
        self.ui.pHaicValueLabel.text = f"{number['P(PD | HAIC)']:.1%}"
        self.ui.hValueLabel.text = (
            f"{number['interaction score h']:+.2f}   ({number['h ensemble spread share']:.0%} ensemble spread "
            f"{number['h ensemble spread lower']:+.2f} to {number['h ensemble spread upper']:+.2f}; "
            f"{number['training percentile of h']:.0f}th percentile of the training cohort)")
        self.ui.recommendationValueLabel.text = f"{text['recommendation']} ({text['why']})"

    def _showResult(self, result, nodes):
        self.ui.progressBar.value = 100
        self._showResultTable(nodes["result_table"])
        p = result.prediction
        notes = [f"Done. Output folder: {self.logic.lastOutDir}"]
        if p.imputed:
            notes.append(f"Not given, set to the {result.model.get('imputation', 'training value')}: " + ", ".join(p.imputed))
        notes += [f"Warning: {w}" for w in result.warnings]
        if "DEMO" in result.model.get("note", ""):
            notes.append(result.model["note"])
        self.ui.statusLabel.text = "\n".join(notes)
        self.onShowChartButton()
        self.logic.showLargestTumourSlice(self._parameterNode.apVolume, result)

    def onShowChartButton(self):
        nodes = self.resultNodes()
        if not nodes:
            return
        chart = nodes["risk_chart"] if self.ui.chartComboBox.currentIndex == 0 else nodes["drivers_chart"]
        showChartInLayout(chart, self.layoutKeeper)

    def onExportReportButton(self):
        target = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), "Export the DELICAITE report to")
        if not target:
            return
        with slicer.util.tryWithErrorDisplay("Exporting the report failed.", waitCursor=True):
            copied = self.logic.exportReport(self._outputFolder(), target)
            self.ui.statusLabel.text = f"Report exported to {target}: " + ", ".join(os.path.basename(p) for p in copied)


def showChartInLayout(chartNode, layoutKeeper=None):
    """Show ``chartNode`` in a plot view beside the red slice view (registers that layout once);
    ``layoutKeeper`` (support.LayoutKeeper) gives the user's layout back when the module is left."""
    layoutManager = slicer.app.layoutManager()
    if layoutManager is None:  # no main window (e.g. Slicer --no-main-window)
        return None
    layoutNode = layoutManager.layoutLogic().GetLayoutNode()
    if not layoutNode.IsLayoutDescription(CHART_LAYOUT_ID):
        layoutNode.AddLayoutDescription(CHART_LAYOUT_ID, CHART_LAYOUT_XML)
    (layoutKeeper or DELICAITESupport.LayoutKeeper()).switchTo(CHART_LAYOUT_ID)
    plotViewNode = layoutManager.plotWidget(0).mrmlPlotViewNode()
    plotViewNode.SetPlotChartNodeID(chartNode.GetID())
    return plotViewNode


class DELICAITERecommendLogic(ScriptedLoadableModuleLogic):
    """Node-level operations of the module; usable without the Widget (scripts, tests).

    ``compute`` runs the case engine in this process (scripts, the self-test); ``computeInBackground``
    runs the same engine as `delicaite case` in a background process (the panel). Both write result.json,
    report.png and report.html to an output folder and add the same result nodes to the scene."""

    CANCELLED = "cancelled"

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        DELICAITESupport.ensureLibraryOnPath()
        self.runner = DELICAITESupport.BackgroundRunner()
        self.lastOutDir = None

    def getParameterNode(self):
        return DELICAITERecommendParameterNode(super().getParameterNode())

    @staticmethod
    def demoModelPath():
        from DELICAITELib.demo import demo_model_dir

        return str(demo_model_dir())

    def isDemoModel(self, path):
        return bool(path) and os.path.realpath(str(path)) == os.path.realpath(self.demoModelPath())

    def isRunning(self):
        return self.runner.isRunning()

    def cancel(self):
        self.runner.cancel()

    def compute(self, apNode, vpNode, segmentationNode, clinical, modelPath, outDir=None, progress=None):
        """Run the case on the nodes in this process; returns (CaseResult, dict of the created nodes:
        result_table, drivers_table, risk_table, risk_chart, drivers_chart). ``vpNode`` None or ``apNode``
        means single phase. The files go to ``outDir`` (a new temporary folder when None), remembered as
        ``lastOutDir`` for `exportReport`."""
        from DELICAITELib import mrml
        from DELICAITELib.case import CaseEngine, write_case_outputs

        images = mrml.images_from_case_nodes(apNode, vpNode, segmentationNode)
        engine = CaseEngine.for_model(modelPath)
        run = engine.run(images.ap, images.vp, images.label, clinical, progress)
        outDir = str(outDir or tempfile.mkdtemp(prefix="DELICAITERecommend-"))
        write_case_outputs(run, outDir, engine.bundle.training_h)
        self.lastOutDir = outDir
        return run.result, self._resultNodesOfCase(segmentationNode, run.result)

    def computeInBackground(self, apNode, vpNode, segmentationNode, clinical, modelPath, outDir=None,
                            onEvent=None, onDone=None):
        """The same case as `delicaite case` in a background process; returns at once.

        ``onEvent(ProgressEvent)`` gets each step with the fraction done; ``onDone(result, nodes, failure)``
        runs once at the end on the GUI thread: the CaseResult and its nodes, or (None, None, why)."""
        import SimpleITK as sitk
        from DELICAITELib import jobs, mrml

        images = mrml.images_from_case_nodes(apNode, vpNode, segmentationNode)
        workDir = tempfile.mkdtemp(prefix="DELICAITERecommend-inputs-")
        outDir = str(outDir or tempfile.mkdtemp(prefix="DELICAITERecommend-"))
        try:
            paths = {}
            for role, image in (("ap", images.ap), ("vp", images.vp or images.ap), ("mask", images.label)):
                paths[role] = os.path.join(workDir, f"{role}.nrrd")
                sitk.WriteImage(image, paths[role], True)
            if images.vp is None:
                paths["vp"] = paths["ap"]  # the same file twice: single phase
            clinicalPath = os.path.join(workDir, "clinical.json")
            with open(clinicalPath, "w", encoding="utf-8") as handle:
                json.dump(clinical, handle)
            job = jobs.case_job(paths["ap"], paths["vp"], paths["mask"], clinicalPath, modelPath, outDir)
        except Exception:
            shutil.rmtree(workDir, ignore_errors=True)
            raise

        def finished(job):
            shutil.rmtree(workDir, ignore_errors=True)
            result, nodes, failure = None, None, job.failure_message()
            if failure is None:
                try:
                    from DELICAITELib.case import RESULT_FILE, CaseResult

                    result = CaseResult.read(os.path.join(outDir, RESULT_FILE))
                    nodes = self._resultNodesOfCase(segmentationNode, result)
                    self.lastOutDir = outDir
                except Exception as error:  # noqa: BLE001 — e.g. the scene was closed meanwhile
                    result, nodes, failure = None, None, str(error)
            if onDone is not None:
                onDone(result, nodes, failure)

        return self.runner.start(job, onEvent, finished)

    @staticmethod
    def removeResultNodes(nodes):
        from DELICAITELib.mrml.results import remove_result_nodes

        remove_result_nodes(nodes or {})

    @staticmethod
    def _resultNodesOfCase(segmentationNode, result):
        """The result's nodes, made this case's result (on its segmentation: the hub's step 6 shows it)."""
        from DELICAITELib import mrml

        nodes = mrml.result_nodes(segmentationNode.GetScene(), result)
        caseState.setDerivedNode(segmentationNode, caseState.RESULT_REFERENCE, nodes["result_table"])
        return nodes

    @staticmethod
    def reviewLine(segmentationNode):
        """One line on whether the segmentation was reviewed since its last automatic segmentation."""
        if segmentationNode is None:
            return ""
        if caseState.isReviewed(segmentationNode):
            return "Reviewed \u2713"
        return ("Not marked reviewed: check it in the Segment Editor, then tick 'I have reviewed the liver "
                "and tumour segmentation' in DELICAITE (step 3).")

    @staticmethod
    def resultValues(tableNode):
        """{quantity: (text, number)} of a result table node; {} for None or a table of another kind."""
        return caseState.resultRows(tableNode)

    @staticmethod
    def showLargestTumourSlice(apNode, result):
        """The AP phase in the red view, on the slice with the largest tumour area."""
        if slicer.app.layoutManager() is None or not result.slices or apNode is None:
            return
        from DELICAITELib.mrml.volumes import ijk_to_ras

        slicer.util.setSliceViewerLayers(background=apNode, fit=True)
        nx, ny, _ = apNode.GetImageData().GetDimensions()
        ras = ijk_to_ras(apNode, ((nx - 1) / 2, (ny - 1) / 2, result.slices[0].index))
        redWidget = slicer.app.layoutManager().sliceWidget("Red")
        if redWidget is not None:
            redWidget.mrmlSliceNode().JumpSliceByOffsetting(*ras)

    def exportReport(self, outDir, target):
        """Copy result.json, report.png and report.html from ``outDir`` into folder ``target``; returns the copies."""
        from DELICAITELib.case import REPORT_FILES

        outDir = outDir or self.lastOutDir
        if not outDir:
            raise ValueError("nothing to export yet: compute a recommendation first")
        missing = [name for name in REPORT_FILES if not os.path.isfile(os.path.join(outDir, name))]
        if missing:
            raise ValueError(f"the output folder {outDir} lacks {', '.join(missing)}")
        os.makedirs(target, exist_ok=True)
        return [shutil.copy2(os.path.join(outDir, name), os.path.join(target, name)) for name in REPORT_FILES]


class DELICAITERecommendTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer: the demo phantom case through the Logic (in this process and in the background,
    the same h both ways), and the clinical form of the Widget."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_compute_on_demo_phantom()
        self.setUp()
        self.test_clinical_form()

    def _loadDemoCase(self):
        self.assertTrue(DELICAITESupport.ensureLibrary(moduleName="DELICAITERecommend"))  # installs without asking in testing mode
        from DELICAITELib import mrml
        from DELICAITELib.demo import write_demo_inputs
        from DELICAITELib.io import read_image, read_label

        paths = write_demo_inputs(tempfile.mkdtemp(prefix="DELICAITERecommendTest-inputs-"))
        ap = read_image(paths["ap"])
        apNode = mrml.volume_node_from_image(slicer.mrmlScene, ap, "phantom AP")
        vpNode = mrml.volume_node_from_image(slicer.mrmlScene, read_image(paths["vp"]), "phantom VP")
        label = read_label(paths["mask"], reference=ap)
        segmentationNode = mrml.segmentation_node_from_label(slicer.mrmlScene, label, apNode, "phantom segmentation")
        return apNode, vpNode, segmentationNode

    def test_compute_on_demo_phantom(self):
        import time

        self.delayDisplay("Loading the demo phantom case (synthetic two-phase CT and its segmentation)")
        apNode, vpNode, segmentationNode = self._loadDemoCase()
        from DELICAITELib.demo import DEMO_CLINICAL
        from DELICAITELib.mrml.results import RESULT_LABELS, frame_from_table_node
        from DELICAITELib.recommendation import RECOMMENDATIONS

        self.delayDisplay("Computing the recommendation with the demo model on CPU")
        logic = DELICAITERecommendLogic()
        outDir = tempfile.mkdtemp(prefix="DELICAITERecommendTest-")
        events = []
        result, nodes = logic.compute(apNode, vpNode, segmentationNode, DEMO_CLINICAL, logic.demoModelPath(),
                                      outDir, progress=events.append)
        p = result.prediction
        self.assertTrue(0.0 < p.risk.p_pd_tace < 1.0 and 0.0 < p.risk.p_pd_haic < 1.0)
        self.assertTrue(p.score.lower <= p.score.h <= p.score.upper)
        self.assertIn(p.recommendation, RECOMMENDATIONS)
        self.assertEqual(len(result.slices), 3)
        self.assertEqual(events[-1].fraction, 1.0)

        df = frame_from_table_node(nodes["result_table"])
        self.assertEqual(tuple(df["quantity"]), RESULT_LABELS)
        rows = df.set_index("quantity")
        self.assertEqual(rows.loc["recommendation", "value"], p.recommendation)
        self.assertEqual(rows.loc["P(PD | TACE)", "number"], p.risk.p_pd_tace)
        chart = nodes["risk_chart"]
        self.assertEqual(chart.GetNumberOfPlotSeriesNodes(), 2)
        self.assertEqual(chart.GetNthPlotSeriesNode(0).GetTableNode().GetID(), nodes["risk_table"].GetID())
        if slicer.app.layoutManager() is not None:
            self.assertEqual(showChartInLayout(chart).GetPlotChartNodeID(), chart.GetID())
        copies = logic.exportReport(outDir, tempfile.mkdtemp(prefix="DELICAITERecommendTest-export-"))
        self.assertEqual(len(copies), 3)

        self.delayDisplay("The same case in a background process (the panel's path): the same h")
        done = {}
        logic.computeInBackground(apNode, vpNode, segmentationNode, DEMO_CLINICAL, logic.demoModelPath(),
                                  onDone=lambda r, n, failure: done.update(result=r, nodes=n, failure=failure))
        deadline = time.time() + 600
        while not done:
            self.assertLess(time.time(), deadline, "the background case never reported back")
            slicer.app.processEvents()
            time.sleep(0.05)
        self.assertIsNone(done["failure"])
        self.assertAlmostEqual(done["result"].prediction.score.h, p.score.h, places=9)
        self.delayDisplay(f"Test passed: {p.recommendation} (h = {p.score.h:+.2f})")

    def test_clinical_form(self):
        self.delayDisplay("Clinical form: demo patient, inline messages")
        from DELICAITELib.clinical import validate_record
        from DELICAITELib.clinical.form import record_from_form
        from DELICAITELib.demo import DEMO_CLINICAL

        widget = slicer.modules.delicaiterecommend.widgetRepresentation().self()
        widget.onFillDemoPatient()
        self.assertEqual(validate_record(record_from_form(widget.formValues())), validate_record(DEMO_CLINICAL))
        widget.initializeParameterNode()
        widget.onFillDemoPatient()  # the form as typed goes into the parameter node, saved with the scene
        self.assertEqual(widget._parameterNode.clinicalForm["afp"], widget.formValues()["afp"])
        self.assertEqual(widget.form.checkAll(), [])
        widget.form.inputs["alb"].text = "3.5 g/dL"  # textChanged runs the inline check
        self.assertIn("g/L", widget.form.messages["alb"].text)
        widget.form.inputs["alb"].text = "38.5"
        self.assertEqual(widget.form.messages["alb"].text, "")
        widget.onClearClinical()
        self.assertIn("AFP is required", widget.form.checkAll())
        self.delayDisplay("Test passed")
