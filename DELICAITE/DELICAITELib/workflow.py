"""One patient's case from CT files to a recommendation: the sequence every door (CLI, Slicer) runs.

load phases -> pick the three largest tumour slices -> radiomics per phase -> validate and encode the
clinical covariates -> the interaction model -> result.json, report.png, report.html.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .clinical import encode, validate_record
from .errors import DelicaiteError
from .features import extract_radiomics, load_radiomics_settings
from .io import load_case
from .jsonable import json_default
from .model import load_model
from .report import write_html, write_png
from .slices import largest_tumour_slices

log = logging.getLogger(__name__)
INTERVAL_LEVEL = 0.90
N_DRIVERS = 5

Progress = Callable[[str], None]


def _features_for_model(model, clinical: Mapping, radiomics: Mapping[str, float]) -> tuple[pd.DataFrame, list[str]]:
    """The one-row input the model was trained on, and the names of the inputs that were missing.

    Optional covariates the user left out are filled with the training cohort's mean (the model's
    scaler centre), so they push the score neither way; result.json lists them.
    """
    available = {**encode(clinical).iloc[0].to_dict(), **radiomics}
    wanted = list(model.feature_names_in_)
    absent = [name for name in wanted if name not in available]
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise DelicaiteError(f"the model needs features this case does not have: {shown}")
    row = {name: available[name] for name in wanted}
    imputed = [name for name in wanted if pd.isna(row[name])]
    for name in imputed:
        row[name] = float(model.scaler_mean_[wanted.index(name)])
    return pd.DataFrame([row]), imputed


def predict_case(model, x: pd.DataFrame) -> dict:
    """Risks, interaction score with interval, recommendation and drivers for one encoded patient."""
    risks = model.predict_risks(x).iloc[0]
    h, lower, upper = (float(np.asarray(v).ravel()[0])
                       for v in model.interaction_score(x, return_interval=True, alpha=1 - INTERVAL_LEVEL))
    contributions = model.explain(x).iloc[0]
    top = contributions.reindex(contributions.abs().sort_values(ascending=False).index)[:N_DRIVERS]
    return {
        "risk": {"p_pd_tace": float(risks["p_pd_tace"]), "p_pd_haic": float(risks["p_pd_haic"])},
        "interaction_score": {
            "h": h, "lower": lower, "upper": upper, "interval_level": INTERVAL_LEVEL,
            "training_percentile": float(model.h_percentile(h)),
        },
        "recommendation": str(model.recommend(x)[0]),
        "cutoff": float(model.cutoff),
        "drivers": [{"feature": name, "contribution": float(value)} for name, value in top.items()],
    }


def _model_summary(model, model_path: Path, include_identifiers: bool) -> dict:
    meta = getattr(model, "metadata_", {}) or {}
    summary = {
        "note": meta.get("note", "research model: not validated for clinical use"),
        "weights_sha256": meta.get("weights_sha256", ""),
        "n_features": len(model.feature_names_in_),
        "training_n": model.training_summary_.get("n"),
    }
    if include_identifiers:
        summary["path"] = str(model_path)
    return summary


def run_case(ap, vp, mask, clinical: Mapping, model_path: str | Path, out_dir: str | Path, *,
             radiomics_params=None, include_identifiers: bool = False, device: str = "auto",
             progress: Progress | None = None) -> dict:
    """Run one case and write result.json, features.json, report.png and report.html into ``out_dir``.

    ``ap``/``vp``/``mask`` are paths (DICOM folder, NIfTI, NRRD; an IRCADb folder for the mask) or
    SimpleITK images. Without a mask the AP phase is auto-segmented on ``device`` (result.json says so). File paths are kept out of the outputs unless ``include_identifiers`` is True,
    since they often carry patient names or IDs.
    """
    say = progress or (lambda message: log.info(message))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    say("[1/6] checking the clinical covariates")
    record = validate_record(clinical)
    say("[2/6] loading the model (checksum verified)")
    model = load_model(model_path)
    say("[3/6] loading the arterial and portal-venous phases")
    case = load_case(ap, vp, mask)
    mask_source = "given"
    if case.label is None:
        from .segmentation.backends import segment_ct

        say("      no mask given: auto-segmenting liver and tumour on the AP phase (review it before use)")
        case.label = segment_ct(case.ap, device=device, progress=say)
        mask_source = "automatic (DELICAITE segmentation network, not reviewed)"
    say("[4/6] picking the three largest tumour slices")
    slices = largest_tumour_slices(case.label)
    slice_rows = [{"index": s.index, "area_mm2": s.area_mm2} for s in slices]
    say("[5/6] radiomics of both phases on those slices")
    radiomics = extract_radiomics({"AP": case.ap, "VP": case.vp}, case.label, [s.index for s in slices],
                                  params=radiomics_params)
    say("[6/6] interaction model")
    x, imputed = _features_for_model(model, record, radiomics)
    prediction = predict_case(model, x)

    result = {
        "delicaite_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **prediction,
        "imputed_with_training_mean": imputed,
        "slices": slice_rows,
        "mask_source": mask_source,
        "alignment": case.alignment,
        "radiomics_settings_version": load_radiomics_settings(radiomics_params)[1],
        "model": _model_summary(model, Path(model_path), include_identifiers),
    }
    if include_identifiers:
        result["inputs"] = {"ap": str(ap), "vp": str(vp), "mask": str(mask)}
    (out / "result.json").write_text(json.dumps(result, indent=2, default=json_default), encoding="utf-8")
    (out / "features.json").write_text(json.dumps({"clinical": record, "radiomics": radiomics}, indent=2,
                                                  default=json_default), encoding="utf-8")
    training_h = getattr(model, "training_h_", None)  # every training patient's score
    png = write_png(out / "report.png", result, {"AP": case.ap, "VP": case.vp}, case.label, training_h)
    write_html(out / "report.html", result, png)
    return result
