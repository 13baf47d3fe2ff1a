"""Radiomics of one case: each phase, within the tumour, on the three picked slices.

The engine is pyradiomics (the study's) or mirp (radiomics_mirp.py, the same settings from wheels alone);
engines.py says which one a spec uses.

The picked slices are not neighbours, so they are stacked into a small volume and pyradiomics runs
with ``force2D`` (texture pairs and runs stay within a slice). Shape2D is computed on the largest
slice alone, the only place a 2-D shape is well defined. Features are prefixed by phase:
``AP_original_glrlm_LongRunHighGrayLevelEmphasis``, ``VP_original_shape2D_MaximumDiameter``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import yaml

from ..errors import MaskError

DEFAULT_PARAMS = Path(__file__).with_name("radiomics_v2.yaml")
# Version 1 left the in-plane resampling to pyradiomics; models of DELICAITE 0.1 were made with it.
VERSION_1_PARAMS = Path(__file__).with_name("radiomics_v1.yaml")
TUMOUR_LABEL = 2


def _split_settings(params: str | Path | Mapping | None) -> tuple[dict, dict]:
    """(the engine's parameter dict, our own ``delicaite`` block) of a versioned YAML file or dict."""
    if params is None or isinstance(params, (str, Path)):
        path = Path(params) if params is not None else DEFAULT_PARAMS
        with open(path, encoding="utf-8") as handle:
            params = yaml.safe_load(handle)
    params = copy.deepcopy(dict(params))
    return params, dict(params.pop("delicaite", {}) or {})


def load_radiomics_settings(params: str | Path | Mapping | None = None) -> tuple[dict, int]:
    """Return (pyradiomics parameter dict, our settings_version) from a versioned YAML file or dict."""
    params, ours = _split_settings(params)
    return params, int(ours.get("settings_version", 0))


def delicaite_options(params: str | Path | Mapping | None = None) -> dict:
    """The settings' own ``delicaite`` block (settings_version, resample_before_engine, ...)."""
    return _split_settings(params)[1]


def resample_roi(images: Mapping[str, sitk.Image], mask: sitk.Image,
                 setting: Mapping) -> tuple[dict[str, sitk.Image], sitk.Image]:
    """Stacked slices of each phase and their 0/1 mask resampled to ``resampledPixelSpacing`` (0 keeps an axis) over
    the mask's bounding box widened by ``padDistance`` voxels: the image by ``interpolator``, the mask by
    nearest neighbour; the new grid's outer edges meet the box's. Done here, not inside an engine, so that
    pyradiomics and mirp see the same voxels (their own resampling grids differ)."""
    old = np.array(mask.GetSpacing())
    new = np.array([w if w else o for w, o in zip(setting["resampledPixelSpacing"], old)], dtype=float)
    statistics = sitk.LabelShapeStatisticsImageFilter()
    statistics.Execute(mask)
    box = np.array(statistics.GetBoundingBox(1))
    pad = int(setting.get("padDistance", 5))
    low = np.maximum(box[:3] - pad, 0)
    high = np.minimum(box[:3] + box[3:] - 1 + pad, np.array(mask.GetSize()) - 1)
    size = [int(v) for v in np.ceil((high - low + 1) * old / new)]
    origin = mask.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in low - 0.5 + 0.5 * new / old))
    interpolator = getattr(sitk, str(setting.get("interpolator", "sitkBSpline")))

    def onto_grid(source, how, kind):
        return sitk.Resample(source, size, sitk.Transform(), how, origin, tuple(new), source.GetDirection(), 0, kind)

    return ({phase: onto_grid(image, interpolator, sitk.sitkFloat32) for phase, image in images.items()},
            onto_grid(mask, sitk.sitkNearestNeighbor, sitk.sitkUInt8))


def _extractor(params: dict, **overrides):
    from radiomics import featureextractor  # imported late: pyradiomics is slow to import

    # pyradiomics sets its own log level on import and chats at WARNING about GLCM symmetry.
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(copy.deepcopy(params))
    for key, value in overrides.items():
        extractor.settings[key] = value
    return extractor


def _stack_slices(image: sitk.Image, slice_indices: Sequence[int]) -> sitk.Image:
    """The chosen axial slices as one small volume with the image's in-plane geometry."""
    stacked = sitk.JoinSeries([image[:, :, int(z)] for z in slice_indices])
    stacked.SetOrigin(image[:, :, int(slice_indices[0]):int(slice_indices[0]) + 1].GetOrigin())
    stacked.SetSpacing(image.GetSpacing())
    stacked.SetDirection(image.GetDirection())
    return stacked


def _phase_slices(phase: str, image: sitk.Image, label: sitk.Image, slice_indices: Sequence[int]) -> sitk.Image:
    if image.GetSize() != label.GetSize():
        raise MaskError(f"{phase} image grid {image.GetSize()} differs from the label map grid {label.GetSize()}")
    return _stack_slices(image, slice_indices)


def radiomics_feature_names(params) -> list[str]:
    """The features (no phase prefix) the settings ask for, as far as the engines' name map knows them;
    a class without a map (shape2D) is named by its wildcard, which no agreement record covers."""
    from .radiomics_mirp import PYRADIOMICS_TO_MIRP

    settings, _version = load_radiomics_settings(params)
    names = []
    for name, wanted in (settings.get("featureClass") or {}).items():
        if name not in PYRADIOMICS_TO_MIRP:
            names.append(f"original_{name}_*")
            continue
        names += [f"original_{name}_{feature}" for feature in (wanted or PYRADIOMICS_TO_MIRP[name])]
    return names


def _tumour_mask(label: sitk.Image, tumour_label: int) -> sitk.Image:
    return sitk.Cast(sitk.BinaryThreshold(label, tumour_label, tumour_label, 1, 0), sitk.sitkUInt8)


def _numeric_features(result: Mapping) -> dict[str, float]:
    """Drop pyradiomics' diagnostics and turn its 0-d arrays into floats."""
    return {name: float(np.asarray(value)) for name, value in result.items() if not name.startswith("diagnostics_")}


def extract_radiomics(
    images: Mapping[str, sitk.Image],
    label: sitk.Image,
    slice_indices: Sequence[int],
    params: str | Path | Mapping | None = None,
    tumour_label: int = TUMOUR_LABEL,
    engine: str = "pyradiomics",
) -> dict[str, float]:
    """Radiomics features of every phase in ``images`` (e.g. {"AP": ap, "VP": vp}).

    ``label`` is the case's label map on the grid of the phases; ``slice_indices`` the picked axial
    slices, largest first (shape2D uses the first). Returns an ordered dict ``{PHASE_feature: value}``.
    ``engine``: "pyradiomics" or "mirp" (no shape2D: see radiomics_mirp.py).
    """
    if not slice_indices:
        raise MaskError("no tumour slices given for radiomics: pick the three largest tumour slices first")
    settings, ours = _split_settings(params)
    mask = _tumour_mask(label, tumour_label)
    for z in slice_indices:
        if not np.any(sitk.GetArrayFromImage(mask[:, :, int(z)])):  # a copy: a view of a temporary dangles
            raise MaskError(f"tumour mask is empty on slice {int(z)}: radiomics needs tumour on every picked slice")

    stacked_mask = _stack_slices(mask, slice_indices)
    stacked = {phase: _phase_slices(phase, image, label, slice_indices) for phase, image in images.items()}
    texture_mask = stacked_mask
    if ours.get("resample_before_engine") and settings["setting"].get("resampledPixelSpacing"):
        stacked, texture_mask = resample_roi(stacked, stacked_mask, settings["setting"])
        settings["setting"]["resampledPixelSpacing"] = None
    if engine == "mirp":
        from .radiomics_mirp import extract_with_mirp

        return {f"{phase}_{name}": value for phase, image in stacked.items()
                for name, value in sorted(extract_with_mirp(image, texture_mask, settings).items())}
    classes = dict(settings.get("featureClass") or {})
    with_shape = "shape2D" in classes
    texture = _extractor(settings)
    texture.disableAllFeatures()
    texture.enableFeaturesByName(**{name: wanted or [] for name, wanted in classes.items() if name != "shape2D"})
    # Shape is measured on the mask at native spacing: no resampling, a plain 2-D image.
    shape = _extractor(settings, force2D=False, resampledPixelSpacing=None)
    shape.disableAllFeatures()
    shape.enableFeaturesByName(shape2D=classes.get("shape2D") or [])

    largest_mask = mask[:, :, int(slice_indices[0])]
    features: dict[str, float] = {}
    for phase, image in images.items():
        values = _numeric_features(texture.execute(stacked[phase], texture_mask, label=1))
        if with_shape:
            values.update(_numeric_features(shape.execute(image[:, :, int(slice_indices[0])], largest_mask, label=1)))
        features.update({f"{phase}_{name}": value for name, value in sorted(values.items())})
    return features
