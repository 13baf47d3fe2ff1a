"""Tumour from one click per lesion against the expert tumours of IRCADb-17 and LiTS-117.

For each volume: one seed per reference lesion of at least MIN_LESION_ML (its deepest point, where a
reader would click), grown with `grow_seeded_tumours` inside (a) the expert liver and (b) the automatic
liver of the shipped weights; Dice of the grown tumours against the reference tumours, and the automatic
tumour's Dice (kept by the shipped weights only if their held-out tumour Dice reached the bar). Prints
JSON (and writes it with --out). About a minute on 2 CPU cores.

    python Testing/benchmarks/seeded_tumour.py [--data ../shared/data] [--out seeded.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

MIN_LESION_ML = 1.0


def lesion_seeds_ras(label: sitk.Image) -> list[tuple[float, float, float]]:
    """The deepest point (RAS mm) of every reference lesion of at least MIN_LESION_ML."""
    components = sitk.RelabelComponent(sitk.ConnectedComponent(label == 2), sortByObjectSize=True)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(components)
    seeds = []
    for k in stats.GetLabels():
        if stats.GetPhysicalSize(k) < MIN_LESION_ML * 1000:
            continue
        depth = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(components == k, insideIsPositive=True,
                                                                    useImageSpacing=True))
        z, y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        lx, ly, lz = label.TransformIndexToPhysicalPoint((int(x), int(y), int(z)))
        seeds.append((-lx, -ly, lz))
    return seeds


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    from DELICAITELib.segmentation.backends import grow_seeded_tumours
    from DELICAITELib.segmentation.datasets import shared_training_volumes
    from DELICAITELib.segmentation.inference import segment
    from DELICAITELib.segmentation.weights import held_out_tumour_dice

    rows = {}
    for name, image, reference in shared_training_volumes(args.data):
        if name not in ("ircadb-17", "lits-117"):
            continue
        truth = sitk.GetArrayFromImage(reference) == 2
        seeds = lesion_seeds_ras(reference)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            automatic = segment(image, device="cpu", tumour="always")
        row = {"lesions_seeded": len(seeds), "reference_tumour_ml": round(float(truth.sum()) * np.prod(image.GetSpacing()) / 1000, 1),
               "automatic_tumour_dice": round(dice(sitk.GetArrayFromImage(automatic) == 2, truth), 4)}
        for liver_name, liver in (("expert_liver", sitk.Cast(reference >= 1, sitk.sitkUInt8)),
                                  ("automatic_liver", sitk.Cast(automatic >= 1, sitk.sitkUInt8))):
            grown = sitk.GetArrayFromImage(grow_seeded_tumours(image, liver, seeds)) == 2
            row[f"seeded_dice_in_{liver_name}"] = round(dice(grown, truth), 4)
            row[f"seeded_ml_in_{liver_name}"] = round(float(grown.sum()) * np.prod(image.GetSpacing()) / 1000, 1)
        rows[name] = row
    result = {"what": "tumour Dice: one seed per reference lesion (its deepest point) vs the automatic tumour",
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "note": "both volumes are in the shipped weights' training set: the automatic Dice here is in-sample; "
                      "its held-out (leave-one-volume-out) Dice is the one that decides whether it is kept",
              "held_out_tumour_dice_of_shipped_weights": held_out_tumour_dice(),
              "volumes": rows}
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
