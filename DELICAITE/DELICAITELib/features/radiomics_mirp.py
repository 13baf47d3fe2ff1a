"""The radiomics settings computed by mirp, the IBSI reference package, which installs from wheels where
pyradiomics cannot (Slicer has no compiler; pyradiomics publishes no wheels for Python 3.12).

mirp is asked for what pyradiomics computes with our settings: the same stacked slices and mask, in-plane
only (2.5-D, matrices merged over slices per direction as pyradiomics' force2D does), pyradiomics' bin
edges (``fixed_bin_size_pyradiomics``), on slices DELICAITE resampled itself before either engine
(radiomics.resample_roi: the engines' own resampling grids differ, which alone moved texture by up to 60 %). Each value comes back
under its pyradiomics name. The two engines still differ (interpolation grids, the neighbouring grey level
dependence count), and by how much, feature by feature, is measured on real tumours and recorded in
``radiomics_agreement.json``: a model trained with one engine takes the other's features only where that
record says they agree. Shape2D has no counterpart here (mirp's morphology is 3-D), so mirp gives none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import numpy as np
import SimpleITK as sitk

from ..errors import DelicaiteError

# pyradiomics class -> {pyradiomics feature: mirp feature stem}. Stems are IBSI's (Zwanenburg et al. 2020).
PYRADIOMICS_TO_MIRP = {
    "firstorder": {
        "10Percentile": "stat_p10", "90Percentile": "stat_p90", "Energy": "stat_energy",
        "Entropy": "ih_entropy", "InterquartileRange": "stat_iqr", "Kurtosis": "stat_kurt",
        "Maximum": "stat_max", "MeanAbsoluteDeviation": "stat_mad", "Mean": "stat_mean", "Median": "stat_median",
        "Minimum": "stat_min", "Range": "stat_range", "RobustMeanAbsoluteDeviation": "stat_rmad",
        "RootMeanSquared": "stat_rms", "Skewness": "stat_skew", "TotalEnergy": "stat_total_energy",
        "Uniformity": "ih_uniformity", "Variance": "stat_var",
    },
    "glcm": {
        "Autocorrelation": "cm_auto_corr", "ClusterProminence": "cm_clust_prom", "ClusterShade": "cm_clust_shade",
        "ClusterTendency": "cm_clust_tend", "Contrast": "cm_contrast", "Correlation": "cm_corr",
        "DifferenceAverage": "cm_diff_avg", "DifferenceEntropy": "cm_diff_entr", "DifferenceVariance": "cm_diff_var",
        "Id": "cm_inv_diff", "Idm": "cm_inv_diff_mom", "Idmn": "cm_inv_diff_mom_norm", "Idn": "cm_inv_diff_norm",
        "Imc1": "cm_info_corr1", "Imc2": "cm_info_corr2", "InverseVariance": "cm_inv_var",
        "JointAverage": "cm_joint_avg", "JointEnergy": "cm_energy", "JointEntropy": "cm_joint_entr",
        "MCC": "cm_mcc", "MaximumProbability": "cm_joint_max", "SumAverage": "cm_sum_avg",
        "SumEntropy": "cm_sum_entr", "SumSquares": "cm_joint_var",
    },
    "glrlm": {
        "GrayLevelNonUniformity": "rlm_glnu", "GrayLevelNonUniformityNormalized": "rlm_glnu_norm",
        "GrayLevelVariance": "rlm_gl_var", "HighGrayLevelRunEmphasis": "rlm_hgre", "LongRunEmphasis": "rlm_lre",
        "LongRunHighGrayLevelEmphasis": "rlm_lrhge", "LongRunLowGrayLevelEmphasis": "rlm_lrlge",
        "LowGrayLevelRunEmphasis": "rlm_lgre", "RunEntropy": "rlm_rl_entr", "RunLengthNonUniformity": "rlm_rlnu",
        "RunLengthNonUniformityNormalized": "rlm_rlnu_norm", "RunPercentage": "rlm_r_perc",
        "RunVariance": "rlm_rl_var", "ShortRunEmphasis": "rlm_sre", "ShortRunHighGrayLevelEmphasis": "rlm_srhge",
        "ShortRunLowGrayLevelEmphasis": "rlm_srlge",
    },
    "glszm": {
        "GrayLevelNonUniformity": "szm_glnu", "GrayLevelNonUniformityNormalized": "szm_glnu_norm",
        "GrayLevelVariance": "szm_gl_var", "HighGrayLevelZoneEmphasis": "szm_hgze", "LargeAreaEmphasis": "szm_lze",
        "LargeAreaHighGrayLevelEmphasis": "szm_lzhge", "LargeAreaLowGrayLevelEmphasis": "szm_lzlge",
        "LowGrayLevelZoneEmphasis": "szm_lgze", "SizeZoneNonUniformity": "szm_zsnu",
        "SizeZoneNonUniformityNormalized": "szm_zsnu_norm", "SmallAreaEmphasis": "szm_sze",
        "SmallAreaHighGrayLevelEmphasis": "szm_szhge", "SmallAreaLowGrayLevelEmphasis": "szm_szlge",
        "ZoneEntropy": "szm_zs_entr", "ZonePercentage": "szm_z_perc", "ZoneVariance": "szm_zs_var",
    },
    "gldm": {
        "DependenceEntropy": "ngl_dc_entr", "DependenceNonUniformity": "ngl_dcnu",
        "DependenceNonUniformityNormalized": "ngl_dcnu_norm", "DependenceVariance": "ngl_dc_var",
        "GrayLevelNonUniformity": "ngl_glnu", "GrayLevelVariance": "ngl_gl_var", "HighGrayLevelEmphasis": "ngl_hgce",
        "LargeDependenceEmphasis": "ngl_hde", "LargeDependenceHighGrayLevelEmphasis": "ngl_hdhge",
        "LargeDependenceLowGrayLevelEmphasis": "ngl_hdlge", "LowGrayLevelEmphasis": "ngl_lgce",
        "SmallDependenceEmphasis": "ngl_lde", "SmallDependenceHighGrayLevelEmphasis": "ngl_ldhge",
        "SmallDependenceLowGrayLevelEmphasis": "ngl_ldlge",
    },
    "ngtdm": {
        "Busyness": "ngt_busyness", "Coarseness": "ngt_coarseness", "Complexity": "ngt_complexity",
        "Contrast": "ngt_contrast", "Strength": "ngt_strength",
    },
}
# pyradiomics' kurtosis is the plain fourth standardised moment; IBSI's is the excess kurtosis.
OFFSETS = {("firstorder", "Kurtosis"): 3.0}
# our class names -> mirp's feature families
FAMILIES = {"firstorder": ["statistics", "intensity_histogram"], "glcm": ["glcm"], "glrlm": ["glrlm"],
            "glszm": ["glszm"], "gldm": ["ngldm"], "ngtdm": ["ngtdm"]}
SPATIAL = {"glcm_spatial_method": "2.5d_direction_merge", "glrlm_spatial_method": "2.5d_direction_merge",
           "glszm_spatial_method": "2.5d", "ngldm_spatial_method": "2.5d", "ngtdm_spatial_method": "2.5d"}


def _mirp_options(settings: Mapping, classes) -> dict:
    setting = settings.get("setting") or {}
    if setting.get("normalize"):
        raise DelicaiteError("the mirp radiomics engine does not normalise images: use settings with normalize: false")
    return {"by_slice": True, "image_modality": "CT", "ibsi_compliant": False,
            "base_discretisation_method": "fixed_bin_size_pyradiomics",
            "base_discretisation_bin_width": float(setting.get("binWidth", 25)),
            "base_feature_families": sorted({f for c in classes for f in FAMILIES[c]}), **SPATIAL}


def _stem(column: str) -> str:
    """mirp's column without its settings suffix: cm_inv_diff_d1_2.5d_d_mrg_fbsp_w25.0 -> cm_inv_diff."""
    return re.split(r"_(?:d\d|a\d|2\.5d|2d|3d|fbsp|fbs_|fbn|w\d)", column, maxsplit=1)[0]


def _value(row, stem: str) -> float:
    matches = [column for column in row.index if _stem(column) == stem]
    if len(matches) != 1:
        raise DelicaiteError(f"mirp gave {len(matches)} columns for {stem}: the name map no longer fits this mirp")
    return float(row[matches[0]])


def extract_with_mirp(image: sitk.Image, mask: sitk.Image, settings: Mapping) -> dict[str, float]:
    """The texture and first-order features of ``settings`` on a stacked-slice image and its 0/1 mask, named
    as pyradiomics names them (``original_glcm_Contrast``)."""
    from mirp import extract_features  # imported late: mirp loads itk and scikit-image

    wanted = dict(settings.get("featureClass") or {})
    classes = [name for name in wanted if name in PYRADIOMICS_TO_MIRP]
    if not classes:
        return {}
    if (settings.get("setting") or {}).get("resampledPixelSpacing"):
        raise DelicaiteError("the mirp engine needs settings that resample before the engine (settings version 2: "
                             "delicaite.resample_before_engine); these leave it to pyradiomics")
    spacing = image.GetSpacing()
    logging.getLogger("mirp").setLevel(logging.ERROR)
    tables = extract_features(
        image=sitk.GetArrayFromImage(image).astype(np.float32), mask=sitk.GetArrayFromImage(mask) > 0,
        image_spacing=(spacing[2], spacing[1], spacing[0]), num_cpus=1, **_mirp_options(settings, classes))
    row = tables[0].iloc[0]
    features = {}
    for name in classes:
        chosen = wanted[name] or list(PYRADIOMICS_TO_MIRP[name])
        for feature in chosen:
            stem = PYRADIOMICS_TO_MIRP[name].get(feature)
            if stem is not None:
                features[f"original_{name}_{feature}"] = _value(row, stem) + OFFSETS.get((name, feature), 0.0)
    return features
