"""Benchmark DELICAITE's interaction score against the truth and against peer CATE methods; prints JSON.

Tian-style simulated trials (tian_simulation.py: X ~ N(0, AR(1) ρ = 0.5), logit P(PD | x, T) = g(x) + T·h(x)/2,
sparse linear or nonlinear h, randomized or confounded therapy). Every method is trained on the same
training sample and scored on the same fresh test sample (2000 patients) of the same distribution:

- delicaite: DELICAITELib.model.InteractionModel with its default hyper-parameters (untuned here);
  propensity_weighting=True in the confounded settings, False in the randomized ones.
  Its score for h is interaction_score (logit scale); for the CATE, p_pd_haic − p_pd_tace.
  Its defaults include penalty_search: h's penalties chosen on out-of-bag training patients (see
  DELICAITELib/model/selection.py; the test sample never takes part).
- delicaite_fixed: the same without the search (penalty_search=False).
- econml_drlearner: econml DRLearner (default linear final stage), GradientBoostingClassifier outcome
  model (discrete_outcome), logistic propensity.
- econml_causal_forest: econml CausalForestDML(discrete_treatment=True, discrete_outcome=True),
  GradientBoostingClassifier outcome model, logistic propensity, other settings default.
- causalml_xlearner: causalml BaseXClassifier, GradientBoostingClassifier outcomes,
  GradientBoostingRegressor effects, causalml's default (estimated) propensity.

Peers estimate the CATE of HAIC (T = +1) vs TACE on the PD probability; it serves as their score for both
comparisons. Per setting and method (mean ± sd over seeds): Spearman with the true h and with the true
probability-scale CATE, agreement of the recommendation (HAIC where the score < 0) with the oracle
(HAIC where h < 0), the value gap (oracle's true disease-control rate minus the rule's), and fit seconds.

    .venv-bench/bin/python Testing/benchmarks/bench_interaction.py [--quick] [--out FILE.json]

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

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tian_simulation import TianSample, disease_control_rate, simulate  # noqa: E402

N_TEST = 2000
FULL_GRID = {"n": (300, 900, 2000), "p": (10, 50), "h_form": ("linear", "nonlinear"),
             "assignment": ("randomized", "confounded")}
QUICK_GRID = {"n": (900,), "p": (10,), "h_form": ("linear", "nonlinear"), "assignment": ("randomized", "confounded")}
METRICS = ("spearman_h", "spearman_cate", "agreement", "value_gap", "fit_s")


# --------------------------------------------------------------------------------------------- methods
def fit_delicaite(train: TianSample, confounded: bool, seed: int, **options):
    from DELICAITELib.model import InteractionModel

    model = InteractionModel(propensity_weighting=confounded, random_state=seed, **options)
    model.fit(train.X, train.therapy, train.y)

    def predict(X):
        risks = model.predict_risks(X)
        return model.interaction_score(X), (risks["p_pd_haic"] - risks["p_pd_tace"]).to_numpy()

    return predict


def fit_delicaite_fixed(train: TianSample, confounded: bool, seed: int):
    return fit_delicaite(train, confounded, seed, penalty_search=False)


def fit_drlearner(train: TianSample, confounded: bool, seed: int):
    from econml.dr import DRLearner

    est = DRLearner(model_propensity=LogisticRegression(max_iter=1000),
                    model_regression=GradientBoostingClassifier(random_state=seed),
                    discrete_outcome=True, random_state=seed)
    est.fit(train.y, train.T, X=train.X.to_numpy())
    return lambda X: _same_twice(est.effect(X.to_numpy(), T0=-1.0, T1=1.0))


def fit_causal_forest(train: TianSample, confounded: bool, seed: int):
    from econml.dml import CausalForestDML

    est = CausalForestDML(model_y=GradientBoostingClassifier(random_state=seed),
                          model_t=LogisticRegression(max_iter=1000),
                          discrete_treatment=True, discrete_outcome=True, random_state=seed)
    est.fit(train.y, train.T, X=train.X.to_numpy())
    return lambda X: _same_twice(est.effect(X.to_numpy(), T0=-1.0, T1=1.0))


def fit_xlearner(train: TianSample, confounded: bool, seed: int):
    from causalml.inference.meta import BaseXClassifier

    est = BaseXClassifier(outcome_learner=GradientBoostingClassifier(random_state=seed),
                          effect_learner=GradientBoostingRegressor(random_state=seed), control_name="TACE")
    est.fit(train.X.to_numpy(), train.therapy.astype(str), train.y)
    return lambda X: _same_twice(est.predict(X.to_numpy(), verbose=False))


def _same_twice(cate) -> tuple[np.ndarray, np.ndarray]:
    """Peers have one score, the probability-scale CATE, used for both comparisons."""
    cate = np.asarray(cate, dtype=float).ravel()
    return cate, cate


METHODS = {"delicaite": fit_delicaite, "delicaite_fixed": fit_delicaite_fixed, "econml_drlearner": fit_drlearner,
           "econml_causal_forest": fit_causal_forest, "causalml_xlearner": fit_xlearner}


# ------------------------------------------------------------------------------------------- scoring
def score(test: TianSample, h_score: np.ndarray, cate_score: np.ndarray) -> dict:
    rule_haic = h_score < 0
    return {
        "spearman_h": float(spearmanr(h_score, test.h)[0]),
        "spearman_cate": float(spearmanr(cate_score, test.cate)[0]),
        "agreement": float(np.mean(rule_haic == test.oracle_haic)),
        "value_gap": disease_control_rate(test, test.oracle_haic) - disease_control_rate(test, rule_haic),
    }


def run_setting(setting: dict, seeds, methods) -> dict:
    """Per method, per seed metrics on one setting; train and test samples shared by all methods."""
    confounded = setting["assignment"] == "confounded"
    rows = {name: [] for name in methods}
    truth = []
    for seed in seeds:
        kwargs = {k: setting[k] for k in ("p", "h_form", "assignment")}
        train = simulate(setting["n"], seed=1000 * seed + 1, **kwargs)
        test = simulate(N_TEST, seed=1000 * seed + 2, **kwargs)
        truth.append({"oracle_dc": disease_control_rate(test, test.oracle_haic),
                      "all_tace_dc": disease_control_rate(test, np.zeros(N_TEST, bool)),
                      "all_haic_dc": disease_control_rate(test, np.ones(N_TEST, bool)),
                      "share_haic_best": float(test.oracle_haic.mean())})
        for name in methods:
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    predict = METHODS[name](train, confounded, seed)
                    fit_s = time.perf_counter() - start
                    row = score(test, *predict(test.X)) | {"fit_s": fit_s}
            except Exception as exc:  # a peer failing is a result to report, not a reason to stop
                row = {"error": f"{type(exc).__name__}: {exc}"}
            rows[name].append(row)
            print(f"  {setting_key(setting)} seed {seed} {name}: "
                  + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  file=sys.stderr, flush=True)
    return {"truth": _mean_sd(truth, truth[0].keys()),
            "methods": {name: _mean_sd(r, METRICS) for name, r in rows.items()}}


def _mean_sd(rows: list[dict], keys) -> dict:
    ok = [r for r in rows if "error" not in r]
    out = {"n_seeds": len(ok)}
    if len(ok) < len(rows):
        out["errors"] = [r["error"] for r in rows if "error" in r]
    for k in keys:
        values = np.array([r[k] for r in ok], dtype=float)
        if len(values):
            out[k] = {"mean": round(float(values.mean()), 4), "sd": round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4)}
    return out


def setting_key(s: dict) -> str:
    return f"{s['assignment']}/h={s['h_form']}/n={s['n']}/p={s['p']}"


def headline(results: dict) -> dict:
    """Per setting: method → (mean Spearman with h, mean agreement), and whether DELICAITE is at or
    above the best peer on Spearman with h."""
    out = {}
    for key, res in results.items():
        means = {m: (v.get("spearman_h", {}).get("mean"), v.get("agreement", {}).get("mean"))
                 for m, v in res["methods"].items()}
        peers = [s for m, (s, _) in means.items() if not m.startswith("delicaite") and s is not None]
        verdicts = {}
        for own_name in ("delicaite", "delicaite_fixed"):
            if own_name not in means:
                continue
            own = means[own_name][0]
            verdicts[f"{own_name}_at_or_above_best_peer"] = own is not None and bool(peers) and own >= max(peers)
        out[key] = {"spearman_h|agreement": {m: f"{s:.3f}|{a:.3f}" if s is not None else "failed"
                                             for m, (s, a) in means.items()}, **verdicts}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 settings (n=900, p=10), 2 seeds")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5, quick 2)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    parser.add_argument("--jobs", type=int, default=1, help="settings run in this many processes at once")
    parser.add_argument("--assignments", nargs="+", choices=FULL_GRID["assignment"], default=None,
                        help="only these therapy assignments (default: those of the grid)")
    parser.add_argument("--n", nargs="+", type=int, choices=FULL_GRID["n"], default=None, help="only these sample sizes")
    parser.add_argument("--p", nargs="+", type=int, choices=FULL_GRID["p"], default=None,
                        help="only these numbers of covariates")
    args = parser.parse_args()
    _one_thread()

    grid = dict(QUICK_GRID if args.quick else FULL_GRID)
    for name, chosen in (("assignment", args.assignments), ("n", args.n), ("p", args.p)):
        if chosen:
            grid[name] = tuple(chosen)
    seeds = range(args.seeds or (2 if args.quick else 5))
    settings = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    start = time.perf_counter()
    run = functools.partial(_run_one, seeds=list(seeds), methods=args.methods)
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
        "n_test": N_TEST,
        "seeds": list(seeds),
        "wall_s": round(time.perf_counter() - start, 1),
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "torch_threads": 1, "jobs": args.jobs,
                    "packages": {p: _version(p) for p in ("delicaite", "econml", "causalml", "scikit-learn", "torch", "numpy")}},
        "headline": headline(results),
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


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
