"""The one case engine every door runs: prepare the case → its features for a feature spec → predict.

`delicaite case`, `delicaite batch`, `cohort features`, the demo, the Slicer modules and the example
scripts all go through these three stages, so one patient gets one answer whichever door it came in by:

1. ``prepare``: load both phases and the mask on the AP grid (auto-segment without one), pick the three
   largest tumour slices (prepare.py);
2. ``features``: the image features the model's feature spec asks for (features/spec.py);
3. ``predict``: the bundle's input preparation and one pass through the ensemble (bundle/).

A door makes one engine per model and sends its cases through it (the model is loaded once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..bundle import ModelBundle, load_bundle
from ..clinical import validate_record
from ..errors import DelicaiteError
from ..features.spec import CaseFeatures, FeatureSpec
from ..progress import ProgressCallback, Reporter, reporter
from ..recommendation import Prediction
from .prepare import PreparedCase, prepare_case, user_warnings
from .result import FULL_CASE, SLICES_ONLY, CaseResult


@dataclass
class CaseRun:
    """What one case produced: the prepared case, its features, the validated covariates (None for a
    slices-only case) and the result."""

    prepared: PreparedCase
    features: CaseFeatures
    clinical: dict | None
    result: CaseResult


class CaseEngine:
    """The stages of a case for one model (``bundle``; None: segmentation and slices only).

    ``feature_spec`` overrides the bundle's (the hub's feature step shows radiomics without a model);
    ``device`` is where auto-segmentation and deep features run ("cpu", "cuda", "auto")."""

    def __init__(self, bundle: ModelBundle | None = None, *, feature_spec: FeatureSpec | None = None,
                 device: str = "cpu"):
        self.bundle, self.device = bundle, device
        self._spec = feature_spec

    @classmethod
    def for_model(cls, model_path, *, device: str = "cpu") -> CaseEngine:
        """An engine for the model folder at ``model_path``, checked now, before any case is touched."""
        bundle = load_bundle(model_path)
        if bundle.feature_spec is not None:
            bundle.feature_spec.check(device)
        return cls(bundle, device=device)

    @property
    def feature_spec(self) -> FeatureSpec:
        if self._spec is not None:
            return self._spec
        if self.bundle is None:
            return FeatureSpec.clinical_only()
        return self.bundle.require_feature_spec()

    # --------------------------------------------------------------------------------------- stages
    def prepare(self, ap, vp=None, mask=None, progress: ProgressCallback | Reporter | None = None,
                tumour_seeds_ras=()) -> PreparedCase:
        """Stage 1 (prepare.py): phases and mask on the AP grid, auto-segmented (and gated) without a mask,
        tumours grown from the seeds, the slices."""
        return prepare_case(ap, vp, mask, device=self.device, tumour_seeds_ras=tumour_seeds_ras, progress=progress)

    def features(self, prepared: PreparedCase, progress: ProgressCallback | Reporter | None = None,
                 keep_crops: bool = False) -> CaseFeatures:
        """Stage 2: the image features of the feature spec on the three largest tumour slices."""
        import warnings

        spec = self.feature_spec
        say = reporter(progress)
        say(f"features: {spec.describe()}", 0.0)
        slices = prepared.require_slices()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            features = spec.compute(prepared.case, slices, device=self.device, keep_crops=keep_crops)
        prepared.warnings = tuple(dict.fromkeys((*prepared.warnings, *user_warnings(caught))))
        return features

    def predict(self, clinical: Mapping, features: CaseFeatures) -> Prediction:
        """Stage 3: risks, h, the recommendation and its drivers (``clinical`` already validated)."""
        if self.bundle is None:
            raise DelicaiteError("no model: give a model folder to get a recommendation")
        return self.bundle.predict_case(clinical, features.values)

    # --------------------------------------------------------------------------------- whole cases
    def run(self, ap, vp, mask, clinical: Mapping, progress: ProgressCallback | Reporter | None = None, *,
            include_identifiers: bool = False, keep_crops: bool = False, tumour_seeds_ras=()) -> CaseRun:
        """The three stages for one patient; the covariates are checked first, so a wrong unit stops the
        case before any image is read. File paths enter the result only with ``include_identifiers``."""
        say = reporter(progress)
        say("[1/4] checking the clinical covariates", 0.0)
        record = validate_record(clinical)
        self.feature_spec.check(self.device)  # a model that cannot make its features stops before the images load
        say("[2/4] loading the case" + ("" if mask is not None else " and auto-segmenting it"), 0.02)
        prepared = self.prepare(ap, vp, mask, progress=say.part(0.02, 0.6), tumour_seeds_ras=tumour_seeds_ras)
        say("[3/4] image features on the three largest tumour slices", 0.6)
        features = self.features(prepared, progress=say.part(0.6, 0.9), keep_crops=keep_crops)
        say("[4/4] interaction model", 0.9)
        prediction = self.predict(record, features)
        result = self._result(FULL_CASE, prepared, prediction, include_identifiers, (ap, vp, mask))
        say(f"recommendation: {prediction.recommendation} (h = {prediction.score.h:+.2f})", 1.0)
        return CaseRun(prepared, features, record, result)

    def run_slices_only(self, ap, vp, mask, progress: ProgressCallback | Reporter | None = None, *,
                        include_identifiers: bool = False) -> CaseRun:
        """Stage 1 alone, for a case without covariates: the segmentation, its volumes and the slices
        (none, with a warning, when the mask holds no tumour)."""
        say = reporter(progress)
        prepared = self.prepare(ap, vp, mask, progress=say.part(0.0, 0.95))
        if prepared.slices_problem:
            prepared.warnings = (*prepared.warnings, prepared.slices_problem)
        result = self._result(SLICES_ONLY, prepared, None, include_identifiers, (ap, vp, mask))
        say("segmentation and slices done", 1.0)
        return CaseRun(prepared, CaseFeatures({}), None, result)

    def _result(self, kind: str, prepared: PreparedCase, prediction: Prediction | None, include_identifiers: bool,
                sources: tuple) -> CaseResult:
        model = None
        if self.bundle is not None and prediction is not None:
            model = self.bundle.summary()
            if include_identifiers and self.bundle.directory is not None:
                model["path"] = str(self.bundle.directory)
        inputs = None
        if include_identifiers:
            inputs = {role: None if s is None else (str(s) if isinstance(s, (str, Path)) else "image in memory")
                      for role, s in zip(("ap", "vp", "mask"), sources)}
        return CaseResult(kind=kind, slices=prepared.slices, mask_source=prepared.mask_source,
                          alignment=dict(prepared.case.alignment), volumes_ml=prepared.volumes_ml(),
                          prediction=prediction, model=model,
                          features=self.feature_spec.describe() if prediction is not None else None,
                          warnings=prepared.warnings, inputs=inputs)
