"""Radiomics of one case with pyradiomics: each phase, within the tumour, on the three picked slices.

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

DEFAULT_PARAMS = Path(__file__).with_name("radiomics_v1.yaml")
TUMOUR_LABEL = 2

def load_radiomics_settings(params: str | Path | Mapping | None = None) -> tuple[dict, int]:
    """Return (pyradiomics parameter dict, our settings_version) from a versioned YAML file or dict."""
    if params is None or isinstance(params, (str, Path)):
        path = Path(params) if params is not None else DEFAULT_PARAMS
        with open(path, encoding="utf-8") as handle:
            params = yaml.safe_load(handle)
    params = copy.deepcopy(dict(params))
    ours = params.pop("delicaite", {}) or {}
    return params, int(ours.get("settings_version", 0))


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
) -> dict[str, float]:
    """Radiomics features of every phase in ``images`` (e.g. {"AP": ap, "VP": vp}).

    ``label`` is the case's label map on the grid of the phases; ``slice_indices`` the picked axial
    slices, largest first (shape2D uses the first). Returns an ordered dict ``{PHASE_feature: value}``.
    """
    if not slice_indices:
        raise MaskError("no tumour slices given for radiomics: pick the three largest tumour slices first")
    settings, _version = load_radiomics_settings(params)
    mask = _tumour_mask(label, tumour_label)
    for z in slice_indices:
        if not np.any(sitk.GetArrayFromImage(mask[:, :, int(z)])):  # a copy: a view of a temporary dangles
            raise MaskError(f"tumour mask is empty on slice {int(z)}: radiomics needs tumour on every picked slice")

    classes = dict(settings.get("featureClass") or {})
    with_shape = "shape2D" in classes
    texture = _extractor(settings)
    texture.disableAllFeatures()
    texture.enableFeaturesByName(**{name: wanted or [] for name, wanted in classes.items() if name != "shape2D"})
    # Shape is measured on the mask at native spacing: no resampling, a plain 2-D image.
    shape = _extractor(settings, force2D=False, resampledPixelSpacing=None)
    shape.disableAllFeatures()
    shape.enableFeaturesByName(shape2D=classes.get("shape2D") or [])

    stacked_mask = _stack_slices(mask, slice_indices)
    largest_mask = mask[:, :, int(slice_indices[0])]
    features: dict[str, float] = {}
    for phase, image in images.items():
        if image.GetSize() != label.GetSize():
            raise MaskError(f"{phase} image grid {image.GetSize()} differs from the label map grid {label.GetSize()}")
        values = _numeric_features(texture.execute(_stack_slices(image, slice_indices), stacked_mask, label=1))
        if with_shape:
            values.update(_numeric_features(shape.execute(image[:, :, int(slice_indices[0])], largest_mask, label=1)))
        features.update({f"{phase}_{name}": value for name, value in sorted(values.items())})
    return features
