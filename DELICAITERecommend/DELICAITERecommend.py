"""DELICAITERecommend: P(PD | TACE), P(PD | HAIC), the interaction score h and the recommendation
for one patient, from the CT phases and segmentation in the scene and a clinical form.

Thin module: every algorithm lives in DELICAITELib (shipped with the DELICAITE hub module). The Logic
takes nodes and delegates to DELICAITELib.mrml.results.recommend_from_nodes; the Widget binds the .ui,
builds the clinical form from the covariate schema and shows the result beside the slice views.
"""

import importlib.util
import os
import shutil
import sys
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

REPORT_FILES = ("result.json", "report.png", "report.html")
RECOMMENDATIONS = ("TACE", "HAIC", "no clear preference")

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


def _ensureLibraryOnPath():
    """Make DELICAITELib (and the hub's DELICAITEDependencies) importable when the modules run from a source
    tree (DELICAITE/ beside this folder); an installed extension puts all modules in one folder on the path."""
    if importlib.util.find_spec("DELICAITELib") is None or importlib.util.find_spec("DELICAITEDependencies") is None:
        hub = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "DELICAITE")
        if os.path.isdir(os.path.join(hub, "DELICAITELib")) and hub not in sys.path:
            sys.path.insert(0, hub)


def _ensureLibrary(parentWidget=None):
    """DELICAITELib importable with its Python packages, installed after asking on first use (the hub
    module's DELICAITEDependencies); False when the user declines."""
    _ensureLibraryOnPath()
    from DELICAITEDependencies import ensureDependencies

    return ensureDependencies(parentWidget)


class ComputeCancelled(Exception):
    """Raised from the progress callback when the user pressed Cancel."""


#
# DELICAITERecommend
#

class DELICAITERecommend(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "DELICAITE Recommend"
        self.parent.categories = ["DELICAITE"]
        self.parent.dependencies = []
        self.parent.contributors = ["DELICAITE developers"]
        self.parent.helpText = (
            "Predicted risk of progressive disease (PD) under TACE and under HAIC for one patient with large "
            "hepatocellular carcinoma, the interaction score h = logit P(PD | HAIC) − logit P(PD | TACE) with its "
            "uncertainty interval, and the therapy it favours. Inputs: the arterial and portal-venous CT phases, a "
            "reviewed liver/tumour segmentation (segments Liver and Tumor), and the clinical covariates in the units "
            "shown. Research use only: the bundled model is a demo trained on a simulated cohort."
        )
        self.parent.acknowledgementText = "Method: An C, Li L, Luo Y, et al., J Hepatocell Carcinoma."


#
# DELICAITERecommendWidget
#

class DELICAITERecommendWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._inputs = {}        # field name -> input widget
        self._kinds = {}         # field name -> "number" / "integer" / "checkbox" / "choice"
        self._messages = {}      # field name -> red QLabel under the input
        self._choiceValues = {}  # field name -> value of each combo box entry
        self._result = None
        self._nodes = {}
        self._busy = False
        self._cancelRequested = False

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/DELICAITERecommend.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = DELICAITERecommendLogic()

        try:
            ready = _ensureLibrary(slicer.util.mainWindow())
        except (ImportError, RuntimeError) as err:
            ready = False
            slicer.util.errorDisplay(f"DELICAITE's Python packages could not be set up: {err}")
        if not ready:
            self.ui.statusLabel.text = ("DELICAITE's Python packages are not installed; reload the module "
                                        "to be asked again.")
            self.ui.computeButton.enabled = False
            return
        self.ui.modelPathLineEdit.currentPath = self.logic.demoModelPath()
        self._buildClinicalForm()

        self.ui.apVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self._updateButtons)
        self.ui.vpVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self._updateButtons)
        self.ui.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self._updateButtons)
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self._onModelPathChanged)
        self.ui.fillDemoPatientButton.connect("clicked(bool)", self.onFillDemoPatient)
        self.ui.clearClinicalButton.connect("clicked(bool)", self.onClearClinical)
        self.ui.computeButton.connect("clicked(bool)", self.onComputeButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.showChartButton.connect("clicked(bool)", self.onShowChartButton)
        self.ui.exportReportButton.connect("clicked(bool)", self.onExportReportButton)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self._onModelPathChanged(self.ui.modelPathLineEdit.currentPath)

    def cleanup(self):
        self.removeObservers()

    # --- the clinical form ---------------------------------------------------------------------------

    def _buildClinicalForm(self):
        """One row per schema field: input, unit, and a red message line shown when the value is refused."""
        from DELICAITELib.clinical.form import form_fields

        formLayout = self.ui.clinicalFormGroupBox.layout()
        for field in form_fields():
            if field.kind in ("number", "integer"):
                editor = qt.QLineEdit()
                editor.placeholderText = field.placeholder
                editor.connect("textChanged(QString)", lambda *args, name=field.name: self.onFieldEdited(name))
            elif field.kind == "checkbox":
                editor = qt.QCheckBox()
            else:
                # a required choice starts empty too, so nobody is "male" by default
                choices = list(field.choices) if not field.required else [("", "— choose —"), *field.choices]
                editor = qt.QComboBox()
                for _, text in choices:
                    editor.addItem(text)
                self._choiceValues[field.name] = [value for value, _ in choices]
                editor.connect("currentIndexChanged(int)", lambda *args, name=field.name: self.onFieldEdited(name))
            editor.toolTip = field.tooltip
            row = qt.QWidget()
            grid = qt.QGridLayout(row)
            grid.setContentsMargins(0, 0, 0, 0)
            grid.addWidget(editor, 0, 0)
            if field.unit:
                grid.addWidget(qt.QLabel(field.unit), 0, 1)
            message = qt.QLabel()
            message.styleSheet = "color: #c0392b;"
            message.wordWrap = True
            message.visible = False
            grid.addWidget(message, 1, 0, 1, 2)
            formLayout.addRow(f"{field.label}{' *' if field.required else ''}:", row)
            self._inputs[field.name] = editor
            self._kinds[field.name] = field.kind
            self._messages[field.name] = message

    def formValues(self):
        """What the form holds: text for numbers, bool for checkboxes, the value of the chosen entry."""
        values = {}
        for name, editor in self._inputs.items():
            kind = self._kinds[name]
            if kind == "checkbox":
                values[name] = bool(editor.checked)
            elif kind == "choice":
                values[name] = self._choiceValues[name][max(editor.currentIndex, 0)]
            else:
                values[name] = editor.text
        return values

    def setFormValues(self, values):
        for name, value in values.items():
            editor, kind = self._inputs[name], self._kinds[name]
            if kind == "checkbox":
                editor.checked = bool(value)
            elif kind == "choice":
                editor.currentIndex = self._choiceValues[name].index(value)
            else:
                editor.text = value
        for name in values:
            self._showMessage(name, None)

    def onFieldEdited(self, name):
        from DELICAITELib.clinical.form import check_field

        self._showMessage(name, check_field(name, self.formValues()[name]))

    def _showMessage(self, name, message):
        label = self._messages[name]
        label.text = message or ""
        label.visible = bool(message)

    def checkAllFields(self):
        """Show every field's message; return the list of messages (empty when the form is complete)."""
        from DELICAITELib.clinical.form import check_field

        problems = []
        for name, value in self.formValues().items():
            message = check_field(name, value)
            self._showMessage(name, message)
            if message:
                problems.append(message)
        return problems

    def onFillDemoPatient(self):
        from DELICAITELib.clinical.form import form_values
        from DELICAITELib.demo import DEMO_CLINICAL

        self.setFormValues(form_values(DEMO_CLINICAL))

    def onClearClinical(self):
        from DELICAITELib.clinical.form import form_values

        self.setFormValues(form_values({}))

    # --- inputs and buttons ------------------------------------------------------------------------------

    def _onModelPathChanged(self, path):
        self.ui.demoModelLabel.visible = self.logic.isDemoModel(path)
        self._updateButtons()

    def _updateButtons(self, *args):
        ready = (self.ui.apVolumeSelector.currentNode() is not None
                 and self.ui.segmentationSelector.currentNode() is not None
                 and bool(self.ui.modelPathLineEdit.currentPath))
        self.ui.computeButton.enabled = ready and not self._busy
        self.ui.cancelButton.enabled = self._busy
        self.ui.showChartButton.enabled = bool(self._nodes) and not self._busy
        self.ui.exportReportButton.enabled = self._result is not None and not self._busy

    def onSceneEndClose(self, caller, event):
        self._result, self._nodes = None, {}
        self.ui.resultTableView.setMRMLTableNode(None)
        for label in (self.ui.pTaceValueLabel, self.ui.pHaicValueLabel, self.ui.hValueLabel,
                      self.ui.recommendationValueLabel):
            label.text = "–"
        self._updateButtons()

    # --- compute -------------------------------------------------------------------------------------------

    def _onProgress(self, message):
        self.ui.statusLabel.text = message.strip()
        slicer.app.processEvents()  # keeps the panel responsive and lets Cancel be clicked between steps
        if self._cancelRequested:
            raise ComputeCancelled("cancelled")

    def onCancelButton(self):
        self._cancelRequested = True
        self.ui.statusLabel.text = "Cancelling after the current step..."

    def onComputeButton(self):
        from DELICAITELib.clinical.form import record_from_form

        problems = self.checkAllFields()
        if problems:
            slicer.util.errorDisplay("Please correct the clinical data first:\n\n" + "\n".join(problems))
            return
        apNode = self.ui.apVolumeSelector.currentNode()
        vpNode = self.ui.vpVolumeSelector.currentNode() or apNode
        segmentationNode = self.ui.segmentationSelector.currentNode()
        previous = self._nodes
        self._busy, self._cancelRequested = True, False
        self._updateButtons()
        try:
            with slicer.util.tryWithErrorDisplay("Computing the recommendation failed.", waitCursor=True):
                try:
                    result, nodes = self.logic.compute(apNode, vpNode, segmentationNode,
                                                       record_from_form(self.formValues()),
                                                       self.ui.modelPathLineEdit.currentPath,
                                                       progress=self._onProgress)
                except ComputeCancelled:
                    self.ui.statusLabel.text = "Cancelled; nothing was added to the scene."
                    return
                self.logic.removeResultNodes(previous)  # one set of result nodes at a time
                self._result, self._nodes = result, nodes
                self._showResult(result, nodes, apNode)
        finally:
            self._busy = False
            self._updateButtons()

    def _showResult(self, result, nodes, apNode):
        risk, score = result["risk"], result["interaction_score"]
        self.ui.pTaceValueLabel.text = f"{risk['p_pd_tace']:.1%}"
        self.ui.pHaicValueLabel.text = f"{risk['p_pd_haic']:.1%}"
        self.ui.hValueLabel.text = (
            f"{score['h']:+.2f}   ({score['interval_level']:.0%} interval {score['lower']:+.2f} to "
            f"{score['upper']:+.2f}; {score['training_percentile']:.0f}th percentile of the training cohort)")
        recommendation, cutoff = result["recommendation"], result["cutoff"]
        why = {"HAIC": f"h < −{cutoff:g}: HAIC lowers the predicted risk of progression",
               "TACE": f"h > {cutoff:g}: TACE lowers the predicted risk of progression"}.get(
            recommendation, f"|h| ≤ {cutoff:g}: neither therapy lowers the predicted risk clearly")
        self.ui.recommendationValueLabel.text = f"{recommendation} ({why})"
        self.ui.resultTableView.setMRMLTableNode(nodes["result_table"])
        notes = [f"Done. Output folder: {self.logic.lastOutDir}"]
        if result.get("imputed_with_training_mean"):
            notes.append("Not given, filled with the training mean: " + ", ".join(result["imputed_with_training_mean"]))
        if "DEMO" in result.get("model", {}).get("note", ""):
            notes.append(result["model"]["note"])
            self.ui.demoModelLabel.visible = True
        self.ui.statusLabel.text = "\n".join(notes)
        self.onShowChartButton()
        self._showLargestTumourSlice(apNode, nodes, result)

    def _showLargestTumourSlice(self, apNode, nodes, result):
        """The AP phase in the red view, on the slice with the largest tumour area."""
        if slicer.app.layoutManager() is None or not result.get("slices"):
            return
        from DELICAITELib.mrml.volumes import ijk_to_ras

        slicer.util.setSliceViewerLayers(background=apNode, fit=True)
        nx, ny, _ = apNode.GetImageData().GetDimensions()
        ras = ijk_to_ras(apNode, ((nx - 1) / 2, (ny - 1) / 2, result["slices"][0]["index"]))
        redWidget = slicer.app.layoutManager().sliceWidget("Red")
        if redWidget is not None:
            redWidget.mrmlSliceNode().JumpSliceByOffsetting(*ras)

    def onShowChartButton(self):
        if not self._nodes:
            return
        chart = self._nodes["risk_chart"] if self.ui.chartComboBox.currentIndex == 0 else self._nodes["drivers_chart"]
        showChartInLayout(chart)

    def onExportReportButton(self):
        target = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), "Export the DELICAITE report to")
        if not target:
            return
        with slicer.util.tryWithErrorDisplay("Exporting the report failed.", waitCursor=True):
            copied = self.logic.exportReport(self.logic.lastOutDir, target)
            self.ui.statusLabel.text = f"Report exported to {target}: " + ", ".join(os.path.basename(p) for p in copied)


def showChartInLayout(chartNode):
    """Show ``chartNode`` in a plot view beside the red slice view (registers that layout once)."""
    layoutManager = slicer.app.layoutManager()
    if layoutManager is None:  # no main window (e.g. Slicer --no-main-window)
        return None
    layoutNode = layoutManager.layoutLogic().GetLayoutNode()
    if not layoutNode.IsLayoutDescription(CHART_LAYOUT_ID):
        layoutNode.AddLayoutDescription(CHART_LAYOUT_ID, CHART_LAYOUT_XML)
    layoutManager.setLayout(CHART_LAYOUT_ID)
    plotViewNode = layoutManager.plotWidget(0).mrmlPlotViewNode()
    plotViewNode.SetPlotChartNodeID(chartNode.GetID())
    return plotViewNode


#
# DELICAITERecommendLogic
#

class DELICAITERecommendLogic(ScriptedLoadableModuleLogic):
    """Node-level operations of the module; usable without the Widget (scripts, tests)."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        _ensureLibraryOnPath()
        self.lastOutDir = None

    @staticmethod
    def demoModelPath():
        from DELICAITELib.demo import demo_model_dir

        return str(demo_model_dir())

    def isDemoModel(self, path):
        return bool(path) and os.path.realpath(str(path)) == os.path.realpath(self.demoModelPath())

    def compute(self, apNode, vpNode, segmentationNode, clinical, modelPath, outDir=None, progress=None):
        """Run the case on the nodes; returns (result dict as in result.json, dict of the created nodes:
        result_table, drivers_table, risk_table, risk_chart, drivers_chart). ``vpNode`` None or ``apNode``
        means single phase. result.json, report.png and report.html go to ``outDir`` (a new temporary
        folder when None), remembered as ``lastOutDir`` for `exportReport`."""
        if not _ensureLibrary():
            raise RuntimeError("DELICAITE's Python packages are not installed")
        from DELICAITELib.mrml.results import recommend_from_nodes

        outDir = outDir or tempfile.mkdtemp(prefix="DELICAITERecommend-")
        result, nodes = recommend_from_nodes(apNode, vpNode or apNode, segmentationNode, clinical, modelPath,
                                             outDir, progress=progress)
        self.lastOutDir = str(outDir)
        return result, nodes

    @staticmethod
    def removeResultNodes(nodes):
        from DELICAITELib.mrml.results import remove_result_nodes

        remove_result_nodes(nodes or {})

    def exportReport(self, outDir, target):
        """Copy result.json, report.png and report.html from ``outDir`` into folder ``target``; returns the copies."""
        outDir = outDir or self.lastOutDir
        if not outDir:
            raise ValueError("nothing to export yet: compute a recommendation first")
        missing = [name for name in REPORT_FILES if not os.path.isfile(os.path.join(outDir, name))]
        if missing:
            raise ValueError(f"the output folder {outDir} lacks {', '.join(missing)}")
        os.makedirs(target, exist_ok=True)
        return [shutil.copy2(os.path.join(outDir, name), os.path.join(target, name)) for name in REPORT_FILES]


#
# DELICAITERecommendTest
#

class DELICAITERecommendTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer: the demo phantom case through the Logic, and the clinical form of the Widget."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_compute_on_demo_phantom()
        self.setUp()
        self.test_clinical_form()

    def _loadDemoCase(self):
        self.assertTrue(_ensureLibrary())  # installs without asking in testing mode
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
        self.delayDisplay("Loading the demo phantom case (synthetic two-phase CT and its segmentation)")
        apNode, vpNode, segmentationNode = self._loadDemoCase()
        from DELICAITELib.demo import DEMO_CLINICAL
        from DELICAITELib.mrml.results import RESULT_ROWS, frame_from_table_node

        self.delayDisplay("Computing the recommendation with the demo model on CPU")
        logic = DELICAITERecommendLogic()
        outDir = tempfile.mkdtemp(prefix="DELICAITERecommendTest-")
        messages = []
        result, nodes = logic.compute(apNode, vpNode, segmentationNode, DEMO_CLINICAL, logic.demoModelPath(),
                                      outDir, progress=messages.append)
        risk, score = result["risk"], result["interaction_score"]
        self.assertTrue(0.0 < risk["p_pd_tace"] < 1.0)
        self.assertTrue(0.0 < risk["p_pd_haic"] < 1.0)
        self.assertLessEqual(score["lower"], score["h"])
        self.assertLessEqual(score["h"], score["upper"])
        self.assertIn(result["recommendation"], RECOMMENDATIONS)
        self.assertEqual(len(result["slices"]), 3)
        self.assertTrue(messages)

        table = nodes["result_table"]
        self.assertIsNotNone(slicer.mrmlScene.GetNodeByID(table.GetID()))
        df = frame_from_table_node(table)
        self.assertEqual(list(df["quantity"]), [label for label, _, _ in RESULT_ROWS])
        rows = df.set_index("quantity")
        self.assertEqual(rows.loc["recommendation", "value"], result["recommendation"])
        self.assertEqual(rows.loc["P(PD | TACE)", "number"], risk["p_pd_tace"])

        chart = nodes["risk_chart"]
        self.assertTrue(chart.IsA("vtkMRMLPlotChartNode"))
        self.assertIsNotNone(slicer.mrmlScene.GetNodeByID(chart.GetID()))
        self.assertEqual(chart.GetNumberOfPlotSeriesNodes(), 2)
        self.assertEqual(chart.GetNthPlotSeriesNode(0).GetTableNode().GetID(), nodes["risk_table"].GetID())

        if slicer.app.layoutManager() is not None:
            plotViewNode = showChartInLayout(chart)
            self.assertEqual(plotViewNode.GetPlotChartNodeID(), chart.GetID())

        exported = tempfile.mkdtemp(prefix="DELICAITERecommendTest-export-")
        copies = logic.exportReport(outDir, exported)
        self.assertEqual(sorted(os.path.basename(p) for p in copies), sorted(REPORT_FILES))
        self.delayDisplay(f"Test passed: {result['recommendation']} (h = {score['h']:+.2f})")

    def test_clinical_form(self):
        self.delayDisplay("Clinical form: demo patient, inline messages")
        from DELICAITELib.clinical import validate_record
        from DELICAITELib.clinical.form import record_from_form
        from DELICAITELib.demo import DEMO_CLINICAL

        widget = slicer.modules.delicaiterecommend.widgetRepresentation().self()
        widget.onFillDemoPatient()
        self.assertEqual(validate_record(record_from_form(widget.formValues())), validate_record(DEMO_CLINICAL))
        self.assertEqual(widget.checkAllFields(), [])
        widget._inputs["alb"].text = "3.5 g/dL"  # textChanged runs the inline check
        self.assertIn("g/L", widget._messages["alb"].text)
        widget._inputs["alb"].text = "38.5"
        self.assertEqual(widget._messages["alb"].text, "")
        widget.onClearClinical()
        self.assertIn("AFP is required", widget.checkAllFields())
        self.delayDisplay("Test passed")
