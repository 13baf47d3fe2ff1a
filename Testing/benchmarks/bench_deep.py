"""Benchmark deep-feature extraction of one case on CPU (2 phases × 3 slices of 224²); prints JSON.

Models (one timing function each, listed in MODELS; add a model by adding a function):
- vit_s14: ViT-S/14 in the DINOv2 layout (official 518 px position grid, interpolated to 16 × 16),
  random weights: the case's features at block 4 (the paper's block), and after all 12 blocks.
- resnet18_per_phase: the supervised CNN of each phase (ResNet-18, random weights): probability and
  512 penultimate features per slice, averaged per phase.
Each figure is the median of ``--repeats`` runs after one warm-up. Memory: the process's resident
high-water mark (ru_maxrss) and, per model, the highest resident memory sampled while it ran and its
rise over the memory before it (weights, activations). Crops are the real
IRCADb-17 ones (three largest tumour slices, used as both phases) when ../shared/data is present,
simulated z-scored crops otherwise; ``crops`` in the JSON says which. Targets: <= 2 s per case at block 4,
and <= 2 s for all deep features of a case (ViT block 4 + both CNNs).

    python Testing/benchmarks/bench_deep.py [--data ../shared/data] [--repeats 5] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

TARGETS = {"vit_s14_block4_case_s": 2.0, "all_deep_features_case_s": 2.0}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:  # second field: resident pages
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """Highest current RSS seen while the block runs (sampled every 10 ms): one model's own peak, which
    ru_maxrss cannot show once reading the DICOM series has set a higher high-water mark."""

    def __enter__(self) -> RssSampler:
        self.start_mb = self.peak_mb = _current_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak_mb = max(self.peak_mb, _current_rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _current_rss_mb())


def _median_seconds(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_crops(data: Path) -> tuple[dict[str, np.ndarray], str]:
    """{"AP": (3, 224, 224), "VP": (3, 224, 224)} float32 and where they came from."""
    ircadb = data / "ircadb-17"
    if ircadb.exists():
        from DELICAITELib.io import Case, read_image, read_label
        from DELICAITELib.preprocessing import preprocess_case
        from DELICAITELib.slices import largest_tumour_slices

        image = read_image(ircadb / "PATIENT_DICOM")
        label = read_label(ircadb, reference=image)
        crops = preprocess_case(Case(ap=image, vp=image, label=label), largest_tumour_slices(label))
        return crops, "real: IRCADb-17, three largest tumour slices (single phase used as AP and VP)"
    rng = np.random.default_rng(0)
    simulated = {}
    for phase in ("AP", "VP"):
        # Smooth texture (a coarse grid upsampled), z-scored as preprocess_case leaves it.
        coarse = torch.from_numpy(rng.normal(size=(3, 1, 28, 28)).astype(np.float32))
        fine = torch.nn.functional.interpolate(coarse, size=(224, 224), mode="bilinear")[:, 0].numpy()
        simulated[phase] = (fine - fine.mean(axis=(1, 2), keepdims=True)) / fine.std(axis=(1, 2), keepdims=True)
    return simulated, "simulated: smooth z-scored noise (../shared/data not found)"


def time_vit_s14(crops: dict[str, np.ndarray], repeats: int) -> dict:
    from DELICAITELib.features.deep.encoder import DEFAULT_BLOCK, ViTEncoder
    from DELICAITELib.features.deep.vit import DinoViT

    torch.manual_seed(0)
    encoder = ViTEncoder(DinoViT.named("vit_small"))  # img_size 518 as the official checkpoints
    block_s = _median_seconds(lambda: encoder.case_features(crops, block=DEFAULT_BLOCK), repeats)
    all_blocks_s = _median_seconds(
        lambda: [encoder.slice_features_all_blocks(phase) for phase in crops.values()], repeats)
    return {
        "model": "DINOv2-layout ViT-S/14, random weights, 518 px position grid interpolated to 16 x 16",
        "parameters": sum(p.numel() for p in encoder.model.parameters()),
        "block": DEFAULT_BLOCK,
        "case_s_block4": round(block_s, 4),
        "case_s_all_12_blocks": round(all_blocks_s, 4),
        "n_case_features": len(encoder.case_features(crops)),
    }


def time_resnet18_per_phase(crops: dict[str, np.ndarray], repeats: int) -> dict:
    from DELICAITELib.features.deep.cnn import PhaseCNN, build_resnet18, case_cnn_features

    torch.manual_seed(0)
    size = tuple(next(iter(crops.values())).shape[1:])
    cnns = {phase: PhaseCNN(build_resnet18().eval(), input_size=size, phase=phase) for phase in crops}
    case_s = _median_seconds(lambda: case_cnn_features(crops, cnns), repeats)
    return {
        "model": "ResNet-18 (MONAI, 2-D, one channel), one per phase, random weights",
        "parameters_per_phase": sum(p.numel() for p in cnns["AP"].network.parameters()),
        "case_s": round(case_s, 4),
        "n_case_features": len(case_cnn_features(crops, cnns)),
    }


# name → timing function(crops, repeats) → dict of figures; a second model is one more entry.
MODELS: dict[str, Callable[[dict[str, np.ndarray], int], dict]] = {"vit_s14": time_vit_s14,
                                                                    "resnet18_per_phase": time_resnet18_per_phase}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    crops, source = load_crops(Path(args.data))
    n_crops = sum(len(phase) for phase in crops.values())
    models = {}
    for name, timing in MODELS.items():
        with RssSampler() as rss:
            figures = timing(crops, args.repeats)
        models[name] = {**figures, "rss_before_mb": round(rss.start_mb, 1), "rss_peak_mb": round(rss.peak_mb, 1),
                        "rss_rise_mb": round(rss.peak_mb - rss.start_mb, 1),
                        "peak_rss_mb_so_far": round(_peak_rss_mb(), 1)}

    figures = {"vit_s14_block4_case_s": models["vit_s14"]["case_s_block4"],
               "resnet18_per_phase_case_s": models["resnet18_per_phase"]["case_s"]}
    # all deep features of a case: the ViT's block 4 and both phase CNNs
    figures["all_deep_features_case_s"] = round(figures["vit_s14_block4_case_s"] + figures["resnet18_per_phase_case_s"], 4)
    result = {
        "benchmark": "bench_deep",
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": "cpu",
                    "python": platform.python_version(), "torch": torch.__version__,
                    # other processes competing for the cores make every timing slower
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
        "crops": {"source": source, "per_case": n_crops, "shape": list(next(iter(crops.values())).shape[1:])},
        "repeats": args.repeats,
        "models": models,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "figures": figures,
        "targets": TARGETS,
        "meets_targets": {name: figures[name] <= limit for name, limit in TARGETS.items()},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
