"""DELICAITE on the clinical simulation, as a user runs it: `delicaite simulate --n 900 --seed S`,
`cohort train` (defaults), `cohort evaluate`; prints the truth panel's figures per seed as JSON.

Per seed, on the test patients (internal and external pooled, the in-sample training set left out):
Spearman's correlation of h with the true h, the mean bias of h, the share recommended HAIC beside the
true share, and the true disease-control rate of DELICAITE's rule beside the simple rules' (the linear
modified-covariate logistic, Tian's lasso, "HAIC if PVTT", the best single covariate, all HAIC, all TACE)
and the oracle's; beside them, the logistic regression that knows the truth's form (true_form_reference:
what estimation alone costs). Seeds: seeds.json ("clinical"; evaluation by default).

    .venv/bin/python Testing/benchmarks/bench_clinical.py [--seed-set tuning] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
RULES = ("linear logistic", "Tian lasso", "HAIC if PVTT", "best single covariate", "all HAIC", "all TACE")


def run_seed(seed: int, work: Path) -> dict:
    from DELICAITELib.cohort import write_cohort
    from DELICAITELib.cohort.trained import SPLITS_FILE
    from DELICAITELib.cohort.training import train_cohort
    from DELICAITELib.evaluation.run import run_cohort_evaluation
    from DELICAITELib.simulate import simulate_cohort

    cohort = simulate_cohort(n=900, seed=seed)
    folder = write_cohort(cohort, work / f"cohort{seed}")
    start = time.perf_counter()
    train_cohort(folder, work / f"model{seed}", seed=0)
    train_s = time.perf_counter() - start
    results = run_cohort_evaluation(folder, work / f"model{seed}", work / f"report{seed}", n_boot=200)
    truth = results["truth"]["all_test"]
    values = truth["true_value"]
    row = {"seed": seed, "n_test": truth["n"], "spearman_h": truth["spearman"], "bias_h": truth["bias_h"],
           "haic_share": truth["share_recommended_haic"], "true_haic_share": truth["share_oracle_haic"],
           "dcr": values["recommended"], "oracle_dcr": values["oracle"], "train_s": round(train_s, 1),
           "rules": {name: values[name] for name in RULES if name in values}}
    row["delicaite_minus"] = {name: round(row["dcr"] - v, 4) for name, v in row["rules"].items()}
    row["true_form"] = true_form_reference(cohort, pd.read_csv(work / f"model{seed}" / SPLITS_FILE))
    row["at_least_pvtt_and_linear"] = bool(row["delicaite_minus"]["HAIC if PVTT"] >= 0
                                           and row["delicaite_minus"]["linear logistic"] >= 0)
    print(f"seed {seed}: " + json.dumps({k: row[k] for k in ("spearman_h", "bias_h", "haic_share", "true_haic_share",
                                                             "dcr", "delicaite_minus")}), file=sys.stderr, flush=True)
    return row


def true_form_reference(cohort, splits: pd.DataFrame) -> dict:
    """A reference no one could fit, not a rule: the logistic regression that knows the truth's form
    (logit P(PD) = a + b·g(x) + T·(c + dᵀf(x))/2, g the true main effect, f simulate.true_h_terms),
    unpenalised, fitted on the same training patients and scored on the same test patients as the truth
    panel. Its bias of h is what estimation alone costs with this many patients."""
    from scipy.special import expit

    from DELICAITELib.cohort.splits import TRAINING
    from DELICAITELib.simulate import true_h_terms
    from interaction_methods import true_form_interaction

    sets = splits.set_index("patient_id").loc[list(cohort.patient_id), "set"].to_numpy()
    pd_known = ~np.isnan(np.asarray(cohort.pd, dtype=float))
    train, test = (sets == TRAINING) & pd_known, sets != TRAINING
    g, h, t = np.asarray(cohort.true_g), np.asarray(cohort.true_h), np.asarray(cohort.T, dtype=float)
    terms = true_h_terms(cohort.covariates).to_numpy()
    intercept, slopes = true_form_interaction(np.asarray(cohort.pd)[train], g[train], t[train], terms[train])
    h_hat = intercept + terms @ slopes
    haic = h_hat < 0
    control = 1 - expit(g + np.where(haic, 1.0, -1.0) * h / 2)
    return {"bias_h": float(np.mean((h_hat - h)[test])), "haic_share": float(np.mean(haic[test])),
            "dcr": float(np.mean(control[test]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-set", choices=("evaluation", "tuning"), default="evaluation")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = json.loads((HERE / "seeds.json").read_text())[args.seed_set]["clinical"]
    with tempfile.TemporaryDirectory(prefix="bench-clinical-") as work:
        rows = [run_seed(seed, Path(work)) for seed in seeds]
    summary = {key: {"mean": round(float(np.mean([r[key] for r in rows])), 4),
                     "sd": round(float(np.std([r[key] for r in rows], ddof=1)), 4)}
               for key in ("spearman_h", "bias_h", "haic_share", "true_haic_share", "dcr", "oracle_dcr", "train_s")}
    summary["delicaite_minus"] = {name: {"mean": round(float(np.mean([r["delicaite_minus"][name] for r in rows])), 4),
                                         "min": round(float(np.min([r["delicaite_minus"][name] for r in rows])), 4)}
                                  for name in rows[0]["delicaite_minus"]}
    summary["mean_abs_bias"] = round(float(np.mean([abs(r["bias_h"]) for r in rows])), 4)
    summary["true_form"] = {"mean_abs_bias": round(float(np.mean([abs(r["true_form"]["bias_h"]) for r in rows])), 4),
                            "dcr": round(float(np.mean([r["true_form"]["dcr"] for r in rows])), 4)}
    report = {"benchmark": "bench_clinical", "seed_set": args.seed_set, "seeds": seeds,
              "every_seed_at_least_pvtt_and_linear": all(r["at_least_pvtt_and_linear"] for r in rows),
              "summary": summary, "rows": rows}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
