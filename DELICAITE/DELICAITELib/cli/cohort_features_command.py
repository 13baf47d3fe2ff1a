"""`delicaite cohort features`: radiomics of every cohort case with images, resumable and parallel."""

from __future__ import annotations

import sys

from ..errors import DelicaiteError


def _say(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)  # keeps the progress bar intact


def cmd_features(args) -> None:
    from ..cohort.features import FAILURES_FILE, FEATURES_FILE, extract_cohort_features
    from ..storage import check_output_folder, output_lock

    with output_lock(check_output_folder(args.out)):  # two runs into one folder would do every case twice
        run = extract_cohort_features(args.cohort, args.out, workers=args.workers, scheduler=args.scheduler,
                                      device=args.device, radiomics_params=args.radiomics_params,
                                      radiomics_engine=args.radiomics_engine,
                                      deep_encoder=args.deep_encoder, save_crops=args.save_crops,
                                      deep_cnn=args.deep_cnn, progress_bar=not args.no_progress, say=_say)
    print(f"wrote {args.out}/{FEATURES_FILE}: {len(run.features)} case(s), "
          f"{run.features.shape[1] - 1} feature columns ({run.done} extracted now, {run.resumed} resumed)")
    if run.failed:
        raise DelicaiteError(f"{run.failed} case(s) failed; they are listed in {args.out}/{FAILURES_FILE} and "
                             "are retried when the command runs again")


def add_cohort_parser(cohort_sub) -> None:
    """Add the `features` sub-command to the `delicaite cohort` group."""
    features = cohort_sub.add_parser(
        "features", help="radiomics (and deep features) of every case with images (AP and VP on the three largest tumour slices)",
        description="For each manifest row with images: load AP/VP (+ mask, else auto-segmentation), pick the "
                    "three largest tumour slices, extract radiomics of both phases (and, with --deep-encoder, the ViT's "
                    "block features) into OUT/cases/<id>.json, "
                    "then assemble OUT/features.csv. Finished cases are skipped when run again (resumable); "
                    "failed cases go to OUT/failures.csv and the others go on.")
    features.add_argument("--cohort", required=True, help="cohort folder with manifest.csv (image paths relative "
                                                          "to it or absolute)")
    features.add_argument("--out", required=True, help="features folder: cases/, features.csv, failures.csv")
    features.add_argument("--workers", type=int, default=1,
                          help="parallel worker processes on this machine (default 1: in this process)")
    features.add_argument("--scheduler", metavar="ADDRESS",
                          help="Dask scheduler address (tcp://host:8786): run the cases on that cluster "
                               "(its workers must see the cohort and output folders)")
    features.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu",
                          help="device for auto-segmenting cases without a mask (default: cpu)")
    features.add_argument("--radiomics-params", help="pyradiomics YAML (default: the bundled, versioned settings)")
    features.add_argument("--radiomics-engine", choices=["auto", "pyradiomics", "mirp"], default="auto",
                          help="which engine computes the radiomics (default auto: pyradiomics when installed, else "
                               "mirp); the model trained on them records it, and cases must use the same one")
    features.add_argument("--deep-encoder", metavar="PATH",
                          help="ViT encoder (a folder saved by DELICAITE, or an official DINOv2 .pth checkpoint): adds "
                               "its block-4 features of both phases as deep_vit_* columns (nothing is downloaded)")
    features.add_argument("--deep-cnn", metavar="DIR",
                          help="CNN folder of `delicaite deep train-cnn`: adds each phase's PD probability and 512 "
                               "pooled features and the stacked probability as deep_cnn_* columns")
    features.add_argument("--save-crops", action="store_true",
                          help="also keep each case's preprocessed 224 × 224 crops (OUT/cases/<id>_crops.npz) for "
                               "`delicaite deep` pretraining, block report and CNN training")
    features.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    features.set_defaults(func=cmd_features)
