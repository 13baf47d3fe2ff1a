"""Augmentations the shared training volumes cannot show by themselves.

The four labelled volumes are portal-venous scans without oral contrast, so a network trained on them
had never seen a lumen brighter than the liver outside it, and labelled a contrast-filled stomach
(HCC_009) as liver. :class:`RandContrastLumensd` paints such lumens into the background of a patch.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import MapTransform, RandomizableTransform

# On the 0..1 scale of the [-200, 300] HU window: oral contrast and arterial blood pools are 250-600 HU,
# so they sit at the window's top (0.9-1.0); soft tissue starts around 0.3 (-50 HU).
LUMEN_VALUE = (0.9, 1.0)
SOFT_TISSUE = 0.3


class RandContrastLumensd(RandomizableTransform, MapTransform):
    """With probability ``prob``, paint 1-3 bright ellipsoids (radius 4-12 voxels), each centred in
    background soft tissue, into the background of the patch (label 0; never over liver or tumour): the
    label stays background, so the network learns that a bright lumen next to the liver is not liver."""

    def __init__(self, image_key: str = "image", label_key: str = "label", prob: float = 0.3):
        MapTransform.__init__(self, (image_key, label_key))
        RandomizableTransform.__init__(self, prob)
        self.image_key, self.label_key = image_key, label_key

    def __call__(self, data):
        self.randomize(None)
        if not self._do_transform:
            return data
        sample = dict(data)
        image, label = sample[self.image_key], sample[self.label_key]
        values = image.clone() if isinstance(image, torch.Tensor) else np.array(image, copy=True)
        labels = np.asarray(label.cpu() if isinstance(label, torch.Tensor) else label)[0]
        intensity = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values)[0]
        candidates = np.argwhere((labels == 0) & (intensity > SOFT_TISSUE))
        if len(candidates) == 0:
            return data
        grid = np.ogrid[tuple(slice(0, n) for n in labels.shape)]
        paint = np.zeros(labels.shape, bool)
        for _ in range(int(self.R.randint(1, 4))):
            centre = candidates[int(self.R.randint(len(candidates)))]
            radii = self.R.uniform(4, 12, size=3)
            paint |= sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) < 1
        paint &= labels == 0  # never over the liver or tumour
        level = float(self.R.uniform(*LUMEN_VALUE))
        mask = torch.from_numpy(paint)[None] if isinstance(values, torch.Tensor) else paint[None]
        values[mask] = level
        sample[self.image_key] = values
        return sample
