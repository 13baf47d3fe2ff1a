"""Benchmark DELICAITE's interaction score against the truth, simple baselines and peer CATE methods;
prints JSON.

Tian-style simulated trials (tian_simulation.py: X ~ N(0, AR(1) ρ = 0.5), logit P(PD | x, T) = g(x) + T·h(x)/2,
sparse linear or nonlinear h, randomized or confounded therapy, n 300/900/2000, p 10/50). Every method is
trained on the same training sample and scored on the same test sample (2000 patients) of the same
distribution; the methods are listed in interaction_methods.py, the figures in interaction_scoring.py.

Seeds come from seeds.json: ``--seed-set evaluation`` (the default: the reported tables, seeds never used to
choose a default) or ``--seed-set tuning`` (development). The output lists the seeds, every per-seed row,
per setting the means with SDs, DELICAITE's paired differences in the expected disease-control rate with
95 % CIs, its verdicts against the issue-14 targets, and every setting where it loses.

    .venv-bench/bin/python Testing/benchmarks/bench_interaction.py [--seed-set tuning] [--quick] [--out FILE.json]
    .venv-bench/bin/python Testing/benchmarks/bench_interaction.py --merge A.json B.json --out AB.json

Run it in the separate bench venv (pip install -e '.[bench]'), never in .venv: see pyproject.toml.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import multiprocessing
import platform
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from interaction_methods import BASELINES, METHODS  # noqa: E402
from interaction_scoring import score, summarise, verdicts  # noqa: E402
from tian_simulation import simulate  # noqa: E402

N_TEST = 2000
FULL_GRID = {"n": (300, 900, 2000), "p": (10, 50), "h_form": ("linear", "nonlinear"),
             "assignment": ("randomized", "confounded")}
QUICK_GRID = {"n": (900,), "p": (10,), "h_form": ("linear", "nonlinear"), "assignment": ("randomized", "confounded")}


def seeds_of(seed_set: str) -> list[int]:
    return list(json.loads((HERE / "seeds.json").read_text())[seed_set]["tian"])


def run_setting(setting: dict, seeds, methods) -> dict:
    """Per method, per seed rows on one setting (train and test samples shared by all methods), then the
    summary and DELICAITE's verdicts."""
    confounded = setting["assignment"] == "confounded"
    rows = {name: [] for name in methods}
    kwargs = {k: setting[k] for k in ("p", "h_form", "assignment")}
    for seed in seeds:
        train = simulate(setting["n"], seed=1000 * seed + 1, **kwargs)
        test = simulate(N_TEST, seed=1000 * seed + 2, **kwargs)
        for name in methods:
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    predict = METHODS[name](train, confounded, seed)
                    fit_s = time.perf_counter() - start
                    row = {"seed": seed, **score(test, predict(test)), "fit_s": round(fit_s, 2)}
            except Exception as exc:  # a method failing is a result to report, not a reason to stop
                row = {"seed": seed, "error": f"{type(exc).__name__}: {exc}"}
            rows[name].append(row)
            print(f"  {setting_key(setting)} seed {seed} {name}: "
                  + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  file=sys.stderr, flush=True)
    summary = summarise(rows)
    return {"setting": setting, "rows": rows, "summary": summary, "verdicts": verdicts(summary)}


def setting_key(s: dict) -> str:
    return f"{s['assignment']}/h={s['h_form']}/n={s['n']}/p={s['p']}"


def table(results: dict) -> list[dict]:
    """One line per setting: DELICAITE's bias, share gap, disease-control rate and the best baseline's, the
    paired difference, the verdicts."""
    lines = []
    for key, res in results.items():
        own, v = res["summary"].get("delicaite", {}), res["verdicts"]
        if "best_baseline" not in v:
            lines.append({"setting": key, "note": v.get("note")})
            continue
        best = res["summary"][v["best_baseline"]]
        lines.append({
            "setting": key, "spearman_h": own["spearman_h"], "bias_h": own["bias_h"], "mean_abs_bias": own["mean_abs_bias"],
            "haic_share": own["haic_share"], "true_haic_share": own["true_haic_share"], "dcr": own["dcr"],
            "oracle_dcr": own["oracle_dcr"], "coverage": own["coverage"], "best_baseline": v["best_baseline"],
            "best_baseline_dcr": best["dcr"], "dcr_minus_best_baseline": v["dcr_minus_best_baseline"],
            "true_form": v.get("true_form"),
            "ok": {k: v[k] for k in ("abs_bias_ok", "share_ok", "dcr_ok")}, "losses": v["losses"]})
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 settings (n=900, p=10), the first 2 seeds")
    parser.add_argument("--seed-set", choices=("evaluation", "tuning"), default="evaluation")
    parser.add_argument("--seeds", type=int, default=None, help="only the first N seeds of the set")
    parser.add_argument("--skip-seeds", type=int, default=0, metavar="K",
                        help="start after the first K seeds of the set (to run the rest later and --merge)")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="RUN.json",
                        help="run nothing: combine the rows of earlier runs (say, of different seeds or methods) "
                             "and summarise them as one run; paired differences use the seeds both methods ran")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    parser.add_argument("--jobs", type=int, default=1, help="settings run in this many processes at once")
    parser.add_argument("--assignments", nargs="+", choices=FULL_GRID["assignment"], default=None)
    parser.add_argument("--h-forms", nargs="+", choices=FULL_GRID["h_form"], default=None)
    parser.add_argument("--n", nargs="+", type=int, choices=FULL_GRID["n"], default=None, help="only these sample sizes")
    parser.add_argument("--p", nargs="+", type=int, choices=FULL_GRID["p"], default=None,
                        help="only these numbers of covariates")
    args = parser.parse_args()
    if args.merge:
        _emit(merge([json.loads(path.read_text()) for path in args.merge]), args.out)
        return
    _one_thread()

    grid = dict(QUICK_GRID if args.quick else FULL_GRID)
    for name, chosen in (("assignment", args.assignments), ("h_form", args.h_forms), ("n", args.n), ("p", args.p)):
        if chosen:
            grid[name] = tuple(chosen)
    seeds = seeds_of(args.seed_set)[args.skip_seeds:][: (2 if args.quick and args.seeds is None else args.seeds)]
    methods = ["delicaite", *[m for m in args.methods if m != "delicaite"]] if "delicaite" in args.methods else args.methods
    if "delicaite" in methods and not set(BASELINES) <= set(methods):
        print("note: without every baseline the verdicts compare DELICAITE with those run only", file=sys.stderr)
    settings = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    start = time.perf_counter()
    run = functools.partial(_run_one, seeds=seeds, methods=methods)
    if args.jobs > 1:  # every setting is independent; each process runs its settings start to end
        largest_first = sorted(range(len(settings)), key=lambda i: -settings[i]["n"] * settings[i]["p"])  # no long tail
        with multiprocessing.get_context("spawn").Pool(args.jobs, initializer=_one_thread) as pool:
            done = pool.map(run, [settings[i] for i in largest_first], chunksize=1)
        outcomes = [done[largest_first.index(i)] for i in range(len(settings))]
    else:
        outcomes = [run(setting) for setting in settings]
    results = {setting_key(setting): outcome for setting, outcome in zip(settings, outcomes)}
    report = {
        "benchmark": "bench_interaction",
        "command": " ".join(["python", *sys.argv]),
        "seed_set": args.seed_set, "seeds": seeds, "n_test": N_TEST, "methods": methods,
        "wall_s": round(time.perf_counter() - start, 1),
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "torch_threads": 1, "jobs": args.jobs,
                    "packages": {p: _version(p) for p in ("delicaite", "econml", "causalml", "scikit-learn", "torch", "numpy")}},
        **_tabulated(results),
    }
    _emit(report, args.out)


def merge(runs: list[dict]) -> dict:
    """Earlier runs (or merges) as one: per setting and method the rows of every run (a seed run twice keeps
    its row from the first run listed, so a rerun of some methods goes first), summarised again. The runs
    must share the seed set and the package versions."""
    for key in ("seed_set", "n_test"):
        if len({run[key] for run in runs}) > 1:
            raise SystemExit(f"cannot merge runs with different {key}: {[run[key] for run in runs]}")
    if len({json.dumps(run["machine"]["packages"], sort_keys=True) for run in runs}) > 1:
        raise SystemExit("cannot merge runs made with different package versions: rerun them with one environment")
    results = {}
    for run in runs:
        for key, outcome in run["results"].items():
            merged = results.setdefault(key, {"setting": outcome["setting"], "rows": {}})
            for name, seed_rows in outcome["rows"].items():
                have = {row["seed"] for row in merged["rows"].setdefault(name, [])}
                merged["rows"][name] += [row for row in seed_rows if row["seed"] not in have]
    order = lambda key: tuple(FULL_GRID[k].index(results[key]["setting"][k]) for k in FULL_GRID)  # noqa: E731
    results = {key: results[key] for key in sorted(results, key=order)}  # the grid's order, whatever the runs'
    for outcome in results.values():
        outcome["summary"] = summarise(outcome["rows"])
        outcome["verdicts"] = verdicts(outcome["summary"])
    methods = list(dict.fromkeys(name for run in runs for name in run["methods"]))
    return {
        "benchmark": "bench_interaction", "merged_from": [command for run in runs for command in run.get("merged_from", [run.get("command")])],
        "seed_set": runs[0]["seed_set"], "seeds": sorted({seed for run in runs for seed in run["seeds"]}),
        "seeds_per_method": {name: sorted({seed for run in runs if name in run["methods"] for seed in run["seeds"]})
                             for name in methods},
        "n_test": runs[0]["n_test"], "methods": methods, "wall_s": round(sum(run["wall_s"] for run in runs), 1),
        "machine": runs[0]["machine"] | {"jobs": [jobs for run in runs for jobs in _as_list(run["machine"]["jobs"])]},
        **_tabulated(results),
    }


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _tabulated(results: dict) -> dict:
    lines = table(results)
    return {"table": lines, "losses": {line["setting"]: line["losses"] for line in lines if line.get("losses")},
            "results": results}


def _emit(report: dict, out: Path | None) -> None:
    text = json.dumps(report, indent=1)
    print(text)
    if out:
        out.write_text(text + "\n")


def _one_thread() -> None:
    # One torch thread: on 2 shared cores its OpenMP threads stalled fits 10-40x when other work ran; the
    # networks are small, so one thread is as fast and the fit times become comparable.
    torch.set_num_threads(1)


def _run_one(setting: dict, seeds, methods) -> dict:
    print(f"setting {setting_key(setting)}", file=sys.stderr, flush=True)
    return {"setting": setting} | run_setting(setting, seeds, methods)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except Exception:
        return None


if __name__ == "__main__":
    main()
