"""The `delicaite deep` group: pretrain a ViT encoder, report on its blocks, train the CNN per phase.

All three read the crops that `delicaite cohort features --save-crops` kept (FEATURES_DIR/cases) and use
the training centre's patients only (cohort/deep.py).
"""

from __future__ import annotations

import json

from .common import progress


def cmd_pretrain(args) -> None:
    from ..cohort.deep import pretrain_cohort_encoder

    options = {"epochs": args.epochs, "image_size": args.image_size}
    record = pretrain_cohort_encoder(args.cohort, args.features, args.out, seed=args.seed, progress=progress, **options)
    losses = record["losses"]
    print(f"pretrained on {record['n_crops']} crops of {record['n_patients']} patients: DINO loss {losses[0]:.3f} → "
          f"{losses[-1]:.3f}; encoder written to {args.out} (use it with `cohort features --deep-encoder`)")


def cmd_block_report(args) -> None:
    from ..cohort.deep import cohort_block_report

    report = cohort_block_report(args.encoder, args.cohort, args.features, args.out, seed=args.seed)
    aucs = ", ".join(f"{b}: {a:.2f}" for b, a in zip(report["blocks"], report["knn_auc"]))
    print(f"KNN AUC for PD by block ({aucs}); recommended block {report['recommended_block']} "
          f"({report['rule']}); report in {args.out}")


def cmd_train_cnn(args) -> None:
    from ..cohort.deep import train_cohort_cnns

    summary = train_cohort_cnns(args.cohort, args.features, args.out, epochs=args.epochs, input_size=args.input_size,
                                seed=args.seed, progress=progress)
    print(json.dumps({k: summary[k] for k in ("phases", "stacked_validation_auc", "gradcam")}, indent=1))
    print(f"CNNs written to {args.out}")


def add_parsers(sub) -> None:
    deep = sub.add_parser("deep", help="deep imaging features: ViT pretraining, block report, CNN per phase")
    deep_sub = deep.add_subparsers(dest="deep_command", required=True)

    def common(p) -> None:
        p.add_argument("--cohort", required=True, help="cohort folder (manifest.csv: centres and PD)")
        p.add_argument("--features", required=True, help="folder of `delicaite cohort features --save-crops`")
        p.add_argument("--out", required=True, help="folder to write")
        p.add_argument("--seed", type=int, default=0, help="seed of the centre split (as in `cohort train`) and of training")

    pretrain = deep_sub.add_parser("pretrain", help="DINO self-supervised pretraining of a small ViT on the crops")
    common(pretrain)
    pretrain.add_argument("--epochs", type=int, default=30)
    pretrain.add_argument("--image-size", type=int, default=64, help="global view size in px (a multiple of the patch size 8)")
    pretrain.set_defaults(func=cmd_pretrain)

    report = deep_sub.add_parser("block-report", help="KNN AUC for PD, silhouette, Calinski–Harabasz and t-SNE per block")
    common(report)
    report.add_argument("--encoder", required=True, help="encoder folder or official DINOv2 .pth checkpoint")
    report.set_defaults(func=cmd_block_report)

    cnn = deep_sub.add_parser("train-cnn", help="ResNet-18 per phase for PD, AP/VP stacking, Grad-CAM pictures")
    common(cnn)
    cnn.add_argument("--epochs", type=int, default=30)
    cnn.add_argument("--input-size", type=int, default=None, help="resize the 224 px crops (smaller is faster)")
    cnn.set_defaults(func=cmd_train_cnn)
