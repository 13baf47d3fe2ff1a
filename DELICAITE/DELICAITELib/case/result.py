"""A case's result as a typed object, and result.json, its file.

Every door reads the same attributes: the report, the MRML result tables, the CLI's lines, the
Recommend panel and the batch summary. ``to_json`` writes result.json's layout (the keys of DELICAITE
0.1 kept, so existing readers go on working); ``from_json`` reads it back.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import DelicaiteError
from ..jsonable import read_json
from ..recommendation import SPREAD_MEANING, Driver, InteractionScore, Prediction, Risks
from ..slices import SliceArea

FULL_CASE, SLICES_ONLY = "full_case", "slices_only"
RESULT_FORMAT, RESULT_FORMAT_VERSION = "delicaite-case-result", 1


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class CaseResult:
    """``kind`` FULL_CASE (with a prediction) or SLICES_ONLY (segmentation and slices, no covariates)."""

    kind: str
    slices: tuple[SliceArea, ...]
    mask_source: str
    alignment: dict
    volumes_ml: dict[str, float]
    prediction: Prediction | None = None
    model: dict | None = None
    features: str | None = None  # what the image features were (the spec's description)
    warnings: tuple[str, ...] = ()
    segmentation_file: str | None = None
    inputs: dict | None = None  # file paths, only when the user asked for identifiers
    created: str = field(default_factory=_now)
    delicaite_version: str = __version__

    @property
    def recommendation(self) -> str:
        return "" if self.prediction is None else self.prediction.recommendation

    @property
    def single_phase(self) -> bool:
        return bool(self.alignment.get("single_phase"))

    # ------------------------------------------------------------------------------------ result.json
    def to_json(self) -> dict:
        record = {"format": RESULT_FORMAT, "format_version": RESULT_FORMAT_VERSION, "kind": self.kind,
                  "delicaite_version": self.delicaite_version, "created": self.created}
        p = self.prediction
        if p is not None:
            record.update({
                "risk": {"p_pd_tace": p.risk.p_pd_tace, "p_pd_haic": p.risk.p_pd_haic},
                "interaction_score": {"h": p.score.h, "lower": p.score.lower, "upper": p.score.upper,
                                      "interval_level": p.score.interval_level, "interval_kind": SPREAD_MEANING,
                                      "training_percentile": p.score.training_percentile},
                "recommendation": p.recommendation, "recommendation_reason": p.reason, "cutoff": p.cutoff,
                "decision_rule": p.rule,
                "drivers": [{"feature": d.feature, "contribution": d.contribution} for d in p.drivers],
                "imputed_inputs": list(p.imputed),
            })
        record.update({
            "slices": [{"index": s.index, "area_mm2": s.area_mm2} for s in self.slices],
            "mask_source": self.mask_source, "single_phase": self.single_phase, "alignment": self.alignment,
            "volumes_ml": self.volumes_ml, "features": self.features, "warnings": list(self.warnings),
        })
        for key in ("model", "segmentation_file", "inputs"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        return record

    @classmethod
    def from_json(cls, record: dict) -> CaseResult:
        """The result of a result.json record (this format, or DELICAITE 0.1's, which had no kind)."""
        try:
            prediction = None
            if "interaction_score" in record:
                score = record["interaction_score"]
                prediction = Prediction(
                    risk=Risks(float(record["risk"]["p_pd_tace"]), float(record["risk"]["p_pd_haic"])),
                    score=InteractionScore(float(score["h"]), float(score["lower"]), float(score["upper"]),
                                           float(score["interval_level"]), float(score["training_percentile"])),
                    cutoff=float(record["cutoff"]),
                    drivers=tuple(Driver(str(d["feature"]), float(d["contribution"])) for d in record.get("drivers", [])),
                    imputed=tuple(record.get("imputed_inputs", record.get("imputed_with_training_mean", []))))
            return cls(
                kind=str(record.get("kind", FULL_CASE if prediction else SLICES_ONLY)),
                slices=tuple(SliceArea(int(s["index"]), float(s["area_mm2"])) for s in record.get("slices", [])),
                mask_source=str(record.get("mask_source", "given")), alignment=dict(record.get("alignment", {})),
                volumes_ml=dict(record.get("volumes_ml") or {}), prediction=prediction, model=record.get("model"),
                features=record.get("features"), warnings=tuple(record.get("warnings", [])),
                segmentation_file=record.get("segmentation_file"), inputs=record.get("inputs"),
                created=str(record.get("created", "")), delicaite_version=str(record.get("delicaite_version", "")))
        except (KeyError, TypeError, ValueError) as err:
            raise DelicaiteError(f"not a DELICAITE case result ({type(err).__name__}: {err})") from None

    @classmethod
    def read(cls, path) -> CaseResult:
        return cls.from_json(read_json(path, "case result", Path(path).name))
