"""Reading CT (DICOM series or volume files) and label maps, checking them, and loading a two-phase case.

Public API: :func:`read_image`, :func:`check_ct`, :func:`read_label`, :func:`load_case`, :class:`Case`.
"""

from .case import Case, load_case
from .checks import check_ct, overlap_fraction, same_grid
from .dicom import SeriesInfo, list_series, read_dicom_series
from .images import read_image
from .labels import LIVER, TUMOUR, check_label, label_volumes_ml, read_label

__all__ = [
    "Case",
    "LIVER",
    "SeriesInfo",
    "TUMOUR",
    "check_ct",
    "check_label",
    "label_volumes_ml",
    "list_series",
    "load_case",
    "overlap_fraction",
    "read_dicom_series",
    "read_image",
    "read_label",
    "same_grid",
]
