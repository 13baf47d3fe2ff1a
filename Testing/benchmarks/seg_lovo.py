"""Leave-one-volume-out evaluation of the segmentation recipe on the labelled volumes of ../shared/data.

For each volume: train from scratch on the others (LOVO_RECIPE, seeded), segment the held-out CT
with the library's `segment` (post-processing on) and compute Dice on the held-out volume's own grid:
liver (label >= 1) always, tumour (label 2) where the reference labels tumour. Raw Dice (before
post-processing) is reported too, and so is the liver each fold's model finds in the liver-free pelvis
of example_ct.nii.gz (false positives; no volume of that scan's pelvis is trained on). Prints JSON and
writes it with --out. About 15 min on 2 CPU cores.

    python Testing/benchmarks/seg_lovo.py [--data ../shared/data] [--out lovo.json] [--device auto]
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from DELICAITELib.segmentation.metrics import mask_dice


def _scores(predicted: sitk.Image, reference: sitk.Image, with_tumour: bool) -> dict:
    p, r = sitk.GetArrayViewFromImage(predicted), sitk.GetArrayViewFromImage(reference)
    scores = {"liver_dice": round(mask_dice(p >= 1, r >= 1), 4)}
    if with_tumour:
        scores["tumour_dice"] = round(mask_dice(p == 2, r == 2), 4)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--only", nargs="*", help="hold out only these volumes (default: each in turn)")
    parser.add_argument("--keep", help="keep each fold's weights in KEEP/<held-out name>/ (default: discarded)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (experiments only)")
    parser.add_argument("--neighbour-ratio", type=float, help="override the recipe's neighbour_ratio (experiments only)")
    parser.add_argument("--seed", type=int, help="override the recipe's seed (noise between runs)")
    args = parser.parse_args()

    from DELICAITELib.io.labels import label_volumes_ml
    from DELICAITELib.segmentation.datasets import (
        liver_free_pelvis,
        shared_training_volumes,
    )
    from DELICAITELib.segmentation.inference import segment
    from DELICAITELib.segmentation.network import SegmentationConfig
    from DELICAITELib.segmentation.postprocess import postprocess
    from DELICAITELib.segmentation.shipped import LOVO_RECIPE
    from DELICAITELib.segmentation.training import train_segmentation

    overrides = {"epochs": args.epochs, "neighbour_ratio": args.neighbour_ratio, "seed": args.seed}
    recipe = {**LOVO_RECIPE, **{k: v for k, v in overrides.items() if v is not None}}
    volumes = shared_training_volumes(args.data, neighbours=True)  # the neighbours only steer patch centres
    pelvis = liver_free_pelvis(args.data) if (Path(args.data) / "totalseg-example").is_dir() else None
    if len(volumes) < 2:
        raise SystemExit(f"need at least two labelled volumes under {args.data}; found {len(volumes)}")
    started_all = time.perf_counter()
    folds = {}
    for name, image, reference, _ in volumes:
        if args.only and name not in args.only:
            continue
        others = [v for v in volumes if v[0] != name]
        with tempfile.TemporaryDirectory(prefix=f"seg-lovo-{name}-") as scratch:
            work = Path(args.keep) / name if args.keep else Path(scratch)
            started = time.perf_counter()
            history = train_segmentation(others, work, device=args.device, progress=False, **recipe)
            train_s = time.perf_counter() - started
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a partial scan may legitimately warn about little liver
                raw = segment(image, weights=work / "best", device=args.device, postprocess=False, tumour="always")
            cleaned = postprocess(raw)
            segment_s = time.perf_counter() - started
            if pelvis is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "no liver found" is the right answer here
                    false_liver = label_volumes_ml(segment(pelvis, weights=work / "best", device=args.device))
        with_tumour = bool(np.any(sitk.GetArrayViewFromImage(reference) == 2))
        fold = {**_scores(cleaned, reference, with_tumour),
                "raw": _scores(raw, reference, with_tumour),
                "liver_ml": {"predicted": round(label_volumes_ml(cleaned)["liver_ml"], 1),
                             "reference": round(label_volumes_ml(reference)["liver_ml"], 1)},
                "pelvis_false_liver_ml": round(false_liver["liver_ml"], 1) if pelvis is not None else None,
                "trained_on": [v[0] for v in others], "final_train_loss": round(history[-1]["loss"], 4),
                "train_s": round(train_s, 1), "segment_s": round(segment_s, 1)}
        folds[name] = fold
        print(f"{name}: {json.dumps(fold)}", flush=True)

    liver = [f["liver_dice"] for f in folds.values()]
    tumour = [f["tumour_dice"] for f in folds.values() if "tumour_dice" in f]
    result = {
        "what": "leave-one-volume-out Dice on each held-out volume's own grid (post-processed)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "folds": folds,
        "mean_liver_dice": round(float(np.mean(liver)), 4),
        "mean_tumour_dice": round(float(np.mean(tumour)), 4) if tumour else None,
        "bar_mean_liver_dice": 0.90,
        "recipe": recipe,
        "config": SegmentationConfig().to_dict(),
        "device": args.device, "torch_threads": torch.get_num_threads(),
        "total_s": round(time.perf_counter() - started_all, 1),
    }
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
