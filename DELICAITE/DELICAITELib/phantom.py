"""A synthetic two-phase liver CT with a large tumour, made here so the demo needs no patient data.

Intensities follow the usual enhancement pattern of hepatocellular carcinoma: the tumour is brighter
than the liver in the arterial phase (AP) and washes out below it in the portal-venous phase (VP).
Shapes are ellipsoids with smooth noise, on a 1 x 1 x 2.5 mm grid, LPS, identity direction.
It is a picture for trying the software, not a model of anatomy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

SPACING_MM = (1.0, 1.0, 2.5)
SIZE_XYZ = (192, 160, 40)

# Mean HU of each tissue in (AP, VP).
HU = {
    "air": (-1000.0, -1000.0),
    "fat": (-100.0, -100.0),
    "muscle": (50.0, 55.0),
    "liver": (70.0, 110.0),
    "tumour": (135.0, 80.0),
    "necrosis": (25.0, 30.0),
    "aorta": (300.0, 160.0),
    "bone": (700.0, 700.0),
}


@dataclass(frozen=True)
class Phantom:
    ap: sitk.Image
    vp: sitk.Image
    label: sitk.Image  # 0 background, 1 liver, 2 tumour


def _ellipsoid(grid: tuple[np.ndarray, ...], centre_mm, radii_mm) -> np.ndarray:
    z, y, x = grid
    cz, cy, cx = centre_mm
    rz, ry, rx = radii_mm
    return ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def _image(values: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.SetSpacing(SPACING_MM)
    image.SetOrigin((-SIZE_XYZ[0] * SPACING_MM[0] / 2, -SIZE_XYZ[1] * SPACING_MM[1] / 2, -50.0))
    return image


def make_phantom(seed: int = 17) -> Phantom:
    """Deterministic AP, VP and label map of the synthetic case."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = SIZE_XYZ
    sx, sy, sz = SPACING_MM
    grid = np.meshgrid(np.arange(nz) * sz, np.arange(ny) * sy, np.arange(nx) * sx, indexing="ij")
    mid = (nz * sz / 2, ny * sy / 2, nx * sx / 2)

    body = _ellipsoid(grid, mid, (400.0, 72.0, 92.0))
    muscle = body & ~_ellipsoid(grid, mid, (400.0, 64.0, 84.0))
    liver = _ellipsoid(grid, (mid[0], mid[1] - 8, mid[2] - 36), (40.0, 44.0, 48.0)) & body
    tumour = _ellipsoid(grid, (mid[0] + 4, mid[1] - 8, mid[2] - 38), (24.0, 26.0, 30.0)) & liver
    necrosis = _ellipsoid(grid, (mid[0] + 4, mid[1] - 8, mid[2] - 38), (9.0, 9.0, 11.0)) & tumour
    spine = _ellipsoid(grid, (mid[0], mid[1] + 48, mid[2]), (400.0, 12.0, 12.0))
    aorta = _ellipsoid(grid, (mid[0], mid[1] + 28, mid[2] + 14), (400.0, 9.0, 9.0))

    phases = []
    for phase in (0, 1):
        volume = np.full(grid[0].shape, HU["air"][phase])
        for mask, tissue in ((body, "fat"), (muscle, "muscle"), (liver, "liver"), (tumour, "tumour"),
                             (necrosis, "necrosis"), (spine, "bone"), (aorta, "aorta")):
            volume[mask] = HU[tissue][phase]
        # Mottled texture inside the tumour (heterogeneous enhancement), then scanner noise.
        mottle = ndimage.gaussian_filter(rng.normal(0, 1, volume.shape), sigma=2.0)
        volume[tumour & ~necrosis] += 25.0 * mottle[tumour & ~necrosis] / mottle.std()
        volume[body] += rng.normal(0, 12.0, int(body.sum()))
        phases.append(_image(volume))

    label = np.zeros(grid[0].shape, np.uint8)
    label[liver] = 1
    label[tumour] = 2
    label_image = sitk.GetImageFromArray(label)
    label_image.CopyInformation(phases[0])
    return Phantom(ap=phases[0], vp=phases[1], label=label_image)
