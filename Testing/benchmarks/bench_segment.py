"""Benchmark auto-segmentation of IRCADb-17 (512×512×119) with the shipped weights; prints JSON.

Times `segment` (resampling, sliding-window network, resampling back, post-processing) on the CPU,
median of --repeats runs after one warm-up, and the process's peak resident memory (ru_maxrss).
Reading the DICOM series is timed separately. When torch sees CUDA the GPU time is recorded too.
Targets: CPU <= 10 s and <= 4 GB on a 2-core machine; GPU <= 3 s. With --tall, also the peak memory of
`segment` and the plausibility gate on a 512×512×900 volume (IRCADb-17 repeated along z), and of the whole
`delicaite case` without a mask on it (one seeded tumour), each in a child process of its own: target <= 8 GB.

    python Testing/benchmarks/bench_segment.py [--data ../shared/data] [--repeats 3] [--tall] [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

TARGETS = {"cpu_s": 10.0, "peak_rss_mb": 4096.0, "cuda_s": 3.0, "tall_peak_rss_mb": 8192.0}
TALL_SLICES = 900
_TALL_CHILD = """
import json, resource, sys, time
import numpy as np, SimpleITK as sitk
from DELICAITELib.io import read_image
from DELICAITELib.segmentation.backends import automatic_mask
image = read_image(sys.argv[1])

tall = sitk.JoinSeries([image[:, :, z % image.GetSize()[2]] for z in range(int(sys.argv[2]))])
tall.SetSpacing(image.GetSpacing()); tall.SetOrigin(image.GetOrigin())
del image
started = time.perf_counter()
result = automatic_mask(tall, device="cpu")
print(json.dumps({"size": list(tall.GetSize()), "s": round(time.perf_counter() - started, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}))
"""


def _tall_case(image, reference) -> dict:
    """`delicaite case` without a mask (auto-segmentation, the gate, one seeded tumour) on the 512×512×900
    volume, in a process of its own; its exit status and peak resident memory (os.wait4)."""
    import os
    import subprocess
    import sys
    import tempfile

    from DELICAITELib.demo import DEMO_CLINICAL, demo_model_dir

    # the deepest voxel of the tumours (their mean may fall between two lesions, outside the liver)
    depth = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(reference == 2, insideIsPositive=True))
    tumour = np.unravel_index(int(np.argmax(depth)), depth.shape)[::-1]  # x, y, z index
    r, a, s = image.TransformIndexToPhysicalPoint([int(v) for v in tumour])
    # one liver in 900 slices: IRCADb-17 in the middle, air below and above (repeating the whole scan, as
    # the segment-only figure does, makes seven livers, which no case could accept)
    below = (TALL_SLICES - image.GetSize()[2]) // 2
    above = TALL_SLICES - image.GetSize()[2] - below
    with tempfile.TemporaryDirectory(prefix="bench-tall-case-") as work:
        tall = sitk.ConstantPad(image, (0, 0, below), (0, 0, above), -1024.0)
        sitk.WriteImage(tall, f"{work}/tall.nii")  # uncompressed: writing 0.9 GB of gzip takes minutes
        del tall
        Path(work, "clinical.json").write_text(json.dumps(DEMO_CLINICAL))
        command = [sys.executable, "-m", "DELICAITELib.cli", "case", "--ap", f"{work}/tall.nii", "--vp", f"{work}/tall.nii",
                   "--clinical", f"{work}/clinical.json", "--model", str(demo_model_dir()), "--out", f"{work}/out",
                   "--device", "cpu", f"--tumour-seed={-r},{-a},{s}"]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    return {"size": [image.GetSize()[0], image.GetSize()[1], TALL_SLICES], "s": round(time.perf_counter() - started, 1),
            "exit": os.waitstatus_to_exitcode(status), "error": errors[-1][:200] if errors else None,
            "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1)}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _time_segment(image, device: str, repeats: int):
    from DELICAITELib.segmentation.inference import segment

    label = segment(image, device=device)  # warm-up: first-call allocations, cuDNN autotuning
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        label = segment(image, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return label, statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--tall", action="store_true", help=f"also measure a 512×512×{TALL_SLICES} volume's peak memory")
    args = parser.parse_args()
    ircadb = Path(args.data) / "ircadb-17"
    if not ircadb.exists():
        raise SystemExit(f"IRCADb-17 not found at {ircadb}: pass --data pointing at shared/data")

    from DELICAITELib.io import read_image, read_label
    from DELICAITELib.io.labels import label_volumes_ml
    from DELICAITELib.segmentation.weights import SHIPPED_WEIGHTS

    started = time.perf_counter()
    image = read_image(ircadb / "PATIENT_DICOM")
    read_s = time.perf_counter() - started
    reference = read_label(ircadb, reference=image)

    label, cpu_s, cpu_times = _time_segment(image, "cpu", args.repeats)
    predicted, truth = sitk.GetArrayViewFromImage(label) >= 1, sitk.GetArrayViewFromImage(reference) >= 1
    result = {
        "what": "segment() of IRCADb-17 with the shipped weights (not held out: IRCADb-17 is in their training set)",
        "image_size": list(image.GetSize()),
        "read_dicom_s": round(read_s, 2),
        "cpu": {"median_s": round(cpu_s, 2), "runs_s": [round(t, 2) for t in cpu_times],
                "torch_threads": torch.get_num_threads()},
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "liver_ml": round(label_volumes_ml(label)["liver_ml"], 1),
        "liver_dice_vs_mask": round(2.0 * np.count_nonzero(predicted & truth) / (predicted.sum() + truth.sum()), 4),
        "weights_sha256": json.loads((SHIPPED_WEIGHTS / "model.json").read_text())["weights_sha256"],
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "processor": platform.processor() or platform.machine()},
        "targets": TARGETS,
    }
    if torch.cuda.is_available():
        _, cuda_s, cuda_times = _time_segment(image, "cuda", args.repeats)
        result["cuda"] = {"median_s": round(cuda_s, 3), "runs_s": [round(t, 3) for t in cuda_times],
                          "gpu": torch.cuda.get_device_name(0),
                          "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
    if args.tall:
        import subprocess
        import sys

        child = subprocess.run([sys.executable, "-c", _TALL_CHILD, str(ircadb / "PATIENT_DICOM"), str(TALL_SLICES)],
                               capture_output=True, text=True, check=True)
        result["tall"] = json.loads(child.stdout.strip().splitlines()[-1])
        result["tall_case"] = _tall_case(image, reference)
    result["meets_targets"] = (cpu_s <= TARGETS["cpu_s"] and result["peak_rss_mb"] <= TARGETS["peak_rss_mb"]
                               and ("cuda" not in result or result["cuda"]["median_s"] <= TARGETS["cuda_s"])
                               and ("tall" not in result or result["tall"]["peak_rss_mb"] <= TARGETS["tall_peak_rss_mb"])
                               and ("tall_case" not in result
                                    or result["tall_case"]["peak_rss_mb"] <= TARGETS["tall_peak_rss_mb"]))
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
