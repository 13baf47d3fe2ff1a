"""`delicaite segment`, `train-seg` and `eval-seg`: liver and tumour auto-segmentation."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import DelicaiteError
from ..storage import write_image_atomically, write_json_atomically
from .common import progress

VALIDATION_SHARE = 0.2


def cmd_segment(args) -> None:
    from ..io import label_volumes_ml, read_image
    from ..progress import ProgressEvent
    from ..segmentation.backends import automatic_mask, choose_backend, parse_seed
    from ..segmentation.plausibility import review_path

    started = time.perf_counter()
    out = Path(args.out)
    check_label_suffix(out)  # before minutes of work, not after
    seeds = [parse_seed(text) for text in args.tumour_seed or ()]
    image = read_image(args.ct)
    if args.backend == "auto" and args.weights is None:
        chosen = "TotalSegmentator" if choose_backend() == "totalsegmentator" else "the embedded DELICAITE network"
        progress(ProgressEvent(f"segmenting with {chosen} (--backend auto)", 0.0))
    result = automatic_mask(image, backend=args.backend, device=args.device, weights=args.weights,
                            ct_path=args.ct, tumour_seeds_ras=seeds, tumour=args.automatic_tumour, progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_image_atomically(out, result.label)
    review_file = write_json_atomically(review_path(out), result.review.to_dict())
    if args.preview:
        from ..pictures import write_segmentation_preview

        write_segmentation_preview(args.preview, image, result.label,
                                   title="" if result.review.plausible else "IMPLAUSIBLE: review before use")
    volumes = label_volumes_ml(result.label)
    print(f"liver {volumes['liver_ml']:.0f} mL, tumour {volumes['tumour_ml']:.0f} mL "
          f"({time.perf_counter() - started:.1f} s); wrote {out} and {review_file.name}")
    if not result.review.plausible:
        print(f"WARNING: {result.review.message()}", file=sys.stderr)


def check_label_suffix(path: Path) -> None:
    """A label map is written as NIfTI or NRRD; say so before the segmentation runs."""
    from ..io.images import VOLUME_SUFFIXES

    if not any(path.name.lower().endswith(suffix) for suffix in VOLUME_SUFFIXES):
        raise DelicaiteError(f"--out {path.name}: name the label map with one of {', '.join(VOLUME_SUFFIXES)}")


def _split_validation(pairs: list, seed: int) -> tuple[list, list]:
    """A seeded share of the pairs held out for validation Dice (none when there are too few)."""
    if len(pairs) < 3:
        return pairs, []
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_val = max(1, int(round(VALIDATION_SHARE * len(pairs))))
    return [pairs[i] for i in order[n_val:]], [pairs[i] for i in order[:n_val]]


def cmd_train_seg(args) -> None:
    from ..segmentation.datasets import find_training_pairs
    from ..segmentation.training import train_segmentation

    pairs = [pair for folder in args.data for pair in find_training_pairs(folder)]
    if args.val:
        val = [pair for folder in args.val for pair in find_training_pairs(folder)]
        train = pairs
    else:
        train, val = _split_validation(pairs, args.seed)
    progress(f"training on {len(train)} volume(s), validating on {len(val)}")
    history = train_segmentation(train, args.out, val_volumes=val or None, epochs=args.epochs, seed=args.seed,
                                 device=args.device, resume=args.resume, progress=True,
                                 iterations_per_epoch=args.iterations, batch_size=args.batch_size)
    print(f"wrote the checkpoint and best weights under {args.out}; last epoch: {json.dumps(history[-1]) if history else '-'}")


def cmd_eval_seg(args) -> None:
    from ..segmentation.metrics import evaluate_files

    metrics = evaluate_files(args.pred, args.ref)
    text = json.dumps(metrics, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


def add_parsers(sub) -> None:
    segment = sub.add_parser("segment", help="auto-segment liver (1) and tumour (2) of a CT onto its own grid")
    segment.add_argument("ct", help="CT: DICOM series folder, NIfTI or NRRD")
    segment.add_argument("--out", required=True, help="label map to write (e.g. SEG.nii.gz or .nrrd)")
    segment.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    segment.add_argument("--backend", choices=["auto", "delicaite", "totalsegmentator"], default="auto",
                         help="auto (default): TotalSegmentator when installed, else the embedded DELICAITE network; "
                              "delicaite: the embedded network; totalsegmentator: liver (and its liver-tumour task with --automatic-tumour always)")
    segment.add_argument("--automatic-tumour", choices=["trusted", "always"], default="trusted",
                         help="trusted (default): keep an automatic tumour only when its held-out Dice was measured and "
                              "reaches 0.7 (otherwise draw or seed it); always: keep whatever the backend found (review it)")
    segment.add_argument("--weights", help="segmentation weights folder (default: the bundled model)")
    segment.add_argument("--preview", help="also write a PNG of three axial slices and a coronal view with the outlines")
    segment.add_argument("--tumour-seed", action="append", metavar="R,A,S",
                         help="grow a tumour from this point (mm, as Slicer shows it); repeat once per lesion; write --tumour-seed=-60,12,-140 when R is negative")
    segment.set_defaults(func=cmd_segment)

    train = sub.add_parser("train-seg", help="train the segmentation network on image/label folders")
    train.add_argument("data", nargs="+", help="folders: MSD Task03, LiTS, NIfTI/NRRD pairs or 3D-IRCADb")
    train.add_argument("--out", required=True, help="output folder (checkpoint/ and best/)")
    train.add_argument("--val", nargs="*", help="validation folders (default: a seeded 20%% of the data)")
    train.add_argument("--epochs", type=int, default=100)
    train.add_argument("--iterations", type=int, default=50, help="patch batches per epoch")
    train.add_argument("--batch-size", type=int, default=2)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    train.set_defaults(func=cmd_train_seg)

    evaluate = sub.add_parser("eval-seg", help="Dice, HD95 and volume error per structure, as JSON")
    evaluate.add_argument("--pred", required=True, help="predicted label map")
    evaluate.add_argument("--ref", required=True, help="reference label map (or a 3D-IRCADb folder)")
    evaluate.add_argument("--out", help="also write the JSON to this file")
    evaluate.set_defaults(func=cmd_eval_seg)
