"""DELICAITE hub module (first release: runs the demo case from the core library).

The whole-case workflow panel and the cohort panel come with the Slicer-extension release; this
module already loads in Slicer, runs the core library on the built-in synthetic case, and shows the
report. Every algorithm lives in DELICAITELib; this file only binds it to Slicer.
"""

import os
import tempfile

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)


class DELICAITE(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "DELICAITE"
        self.parent.categories = ["DELICAITE"]
        self.parent.dependencies = []
        self.parent.contributors = ["DELICAITE developers"]
        self.parent.helpText = (
            "TACE or HAIC for large hepatocellular carcinoma: three largest tumour slices, radiomics and a "
            "covariate-interaction model. Research use only; the bundled model is a demo trained on a "
            "simulated cohort."
        )
        self.parent.acknowledgementText = "Method: An C, Li L, Luo Y, et al., J Hepatocell Carcinoma."


class DELICAITEWidget(ScriptedLoadableModuleWidget):
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        import qt

        button = qt.QPushButton("Run demo case")
        button.toolTip = "Run the synthetic case with the demo model and open its report"
        button.connect("clicked(bool)", self.onRunDemo)
        self.layout.addWidget(button)
        self.resultLabel = qt.QLabel("")
        self.resultLabel.wordWrap = True
        self.layout.addWidget(self.resultLabel)
        self.layout.addStretch(1)

    def onRunDemo(self):
        with slicer.util.tryWithErrorDisplay("Demo case failed.", waitCursor=True):
            result, outDir = DELICAITELogic().runDemo()
            self.resultLabel.text = (
                f"Recommendation: {result['recommendation']} (h = {result['interaction_score']['h']:+.2f}). "
                f"Report: {os.path.join(outDir, 'report.html')}"
            )
            qt = __import__("qt")
            qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(os.path.join(outDir, "report.html")))


class DELICAITELogic(ScriptedLoadableModuleLogic):
    def runDemo(self, outDir=None):
        """Run the library's demo case; returns (result dict, output folder)."""
        from DELICAITELib.demo import run_demo

        outDir = outDir or tempfile.mkdtemp(prefix="DELICAITE-demo-")
        return run_demo(outDir), outDir


class DELICAITETest(ScriptedLoadableModuleTest):
    def runTest(self):
        slicer.mrmlScene.Clear()
        self.test_demo_case()

    def test_demo_case(self):
        self.delayDisplay("Running the demo case through the core library")
        outDir = tempfile.mkdtemp(prefix="DELICAITE-test-")
        result, _ = DELICAITELogic().runDemo(outDir)
        self.assertIn(result["recommendation"], ("TACE", "HAIC", "no clear preference"))
        self.assertEqual(len(result["slices"]), 3)
        self.assertTrue(os.path.exists(os.path.join(outDir, "report.png")))
        self.delayDisplay("Test passed")
