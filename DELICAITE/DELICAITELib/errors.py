"""Errors the library raises for bad input.

Every message is one line that names the problem and, where it can, what to fix. The CLI prints
``error: <message>`` and exits with status 2 for these; anything else is a bug and shows a traceback.
"""


class DelicaiteError(ValueError):
    """Base class: bad input the user can fix (file, image, mask, covariate, model file)."""


class ImageError(DelicaiteError):
    """An image or DICOM folder that cannot be used as CT (wrong dimension, range, spacing, series)."""


class MaskError(DelicaiteError):
    """A label map that is empty, mis-shaped or on the wrong grid."""


class ClinicalError(DelicaiteError):
    """A clinical covariate that is missing, mistyped, out of range or in the wrong unit."""


class ModelFileError(DelicaiteError):
    """A model file that is missing, tampered with (checksum mismatch) or of an unknown format."""
