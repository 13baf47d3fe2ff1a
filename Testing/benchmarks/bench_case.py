"""Benchmark one case end to end on IRCADb-17 and the model on 900 simulated patients; prints JSON.

Steps: load IRCADb-17 (CT + masks), pick slices, radiomics of both phases, train the interaction model
on 900 simulated patients, predict one patient. Each step reports wall seconds (median of repeats for
the fast ones) and the process's peak resident memory so far (ru_maxrss). Targets on a 2-core
machine: radiomics <= 5 s, training <= 60 s, prediction <= 50 ms, peak memory <= 3 GB.

    python Testing/benchmarks/bench_case.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

TARGETS = {"radiomics_s": 5.0, "train_s": 60.0, "predict_ms": 50.0, "peak_rss_mb": 3072.0}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _timed(function, repeats: int = 1):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return value, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    args = parser.parse_args()
    ircadb = Path(args.data) / "ircadb-17"
    if not ircadb.exists():
        raise SystemExit(f"IRCADb-17 not found at {ircadb}: pass --data pointing at shared/data")

    from DELICAITELib.clinical import encode
    from DELICAITELib.features import extract_radiomics
    from DELICAITELib.io import read_image, read_label
    from DELICAITELib.model import InteractionModel
    from DELICAITELib.simulate import simulate_cohort
    from DELICAITELib.slices import largest_tumour_slices

    steps = {}

    def record(name, seconds, **extra):
        steps[name] = {"wall_s": round(seconds, 4), "peak_rss_mb_so_far": round(_peak_rss_mb(), 1), **extra}

    def load():
        image = read_image(ircadb / "PATIENT_DICOM")
        return image, read_label(ircadb, reference=image)

    (ct, label), seconds = _timed(load)
    record("load_ircadb17", seconds, size=list(ct.GetSize()))

    slices, seconds = _timed(lambda: largest_tumour_slices(label), repeats=5)
    record("pick_slices", seconds, slices=[s.index for s in slices])

    indices = [s.index for s in slices]
    extract_radiomics({"AP": ct}, label, indices)  # warm-up: pyradiomics' first import and C setup
    features, seconds = _timed(lambda: extract_radiomics({"AP": ct, "VP": ct}, label, indices), repeats=3)
    record("radiomics_both_phases", seconds, n_features=len(features))

    cohort = simulate_cohort(n=900, seed=1, assignment="physician")
    x = encode(cohort.covariates)
    model, seconds = _timed(lambda: InteractionModel(propensity_weighting=True).fit(x, cohort.therapy, cohort.pd))
    record("train_900_simulated", seconds, n_ensemble=model.n_ensemble, n_features=x.shape[1])

    one = x.iloc[[0]]

    def predict_one():
        return model.predict_all(one)  # risks, h with its interval, recommendation: one ensemble pass

    predict_one()
    _, seconds = _timed(predict_one, repeats=20)
    record("predict_one_patient", seconds)

    figures = {
        "radiomics_s": steps["radiomics_both_phases"]["wall_s"],
        "train_s": steps["train_900_simulated"]["wall_s"],
        "predict_ms": round(steps["predict_one_patient"]["wall_s"] * 1000, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    print(json.dumps({
        "benchmark": "bench_case",
        "machine": {"cpus": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__},
        "steps": steps,
        "figures": figures,
        "targets": TARGETS,
        "meets_targets": {name: figures[name] <= limit for name, limit in TARGETS.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
