"""Train the shipped liver/tumour weights on every labelled volume of ../shared/data (SHIPPED_RECIPE).

    python Testing/benchmarks/build_seg_model.py --out /tmp/seg-final [--install] [--data ../shared/data]

Writes OUT/checkpoint/ and OUT/best/; --install copies OUT/best/ over
DELICAITE/DELICAITELib/resources/liver_seg/ (then update MODEL_CARD.md). About 5 min on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--install", action="store_true", help="copy OUT/best over the shipped weights")
    args = parser.parse_args()

    from DELICAITELib.segmentation.shipped import SHIPPED_RECIPE, build_shipped_segmentation_model

    started = time.perf_counter()
    history = build_shipped_segmentation_model(args.out, args.data, device=args.device, install=args.install)
    print(json.dumps({"recipe": SHIPPED_RECIPE, "train_s": round(time.perf_counter() - started, 1),
                      "final_loss": history[-1]["loss"], "installed": args.install}, indent=2))


if __name__ == "__main__":
    main()
