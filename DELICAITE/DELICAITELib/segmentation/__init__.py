"""Liver (1) and tumour (2) segmentation: the bundled network, TotalSegmentator, corrections, metrics.

Entry points: `backends.segment_ct` (any backend), `inference.segment` (the network; imports torch and
MONAI, so it is not imported here), `postprocess`, the one-click fixes of `corrections`,
`metrics.evaluate_segmentation`, `training.train_segmentation`, `datasets.find_training_pairs`.
"""

from .backends import BACKENDS, segment_ct  # noqa: F401
from .corrections import (  # noqa: F401
    fill_holes,
    grow_tumour_from_seed,
    keep_largest_island,
    remove_component_at,
    restrict_tumour_to_liver,
    smooth,
)
from .metrics import evaluate_files, evaluate_segmentation  # noqa: F401
from .postprocess import postprocess  # noqa: F401
from .totalsegmentator import import_totalsegmentator, run_totalsegmentator  # noqa: F401
