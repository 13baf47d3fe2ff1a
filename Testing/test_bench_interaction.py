"""The interaction benchmark's own machinery: the true-form reference that shows the noise floor, and
merging runs made in parts (a rerun of some methods listed first replaces their rows, merges merge again).

Runs in the main venv with the cheap methods only (no econml, causalml or network fits)."""

import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
from bench_interaction import merge, run_setting  # noqa: E402
from interaction_methods import fit_true_form_logistic  # noqa: E402
from tian_simulation import simulate  # noqa: E402

CHEAP = ["linear_logistic", "all_haic", "all_tace", "true_form_logistic"]
SETTING = {"n": 300, "p": 10, "h_form": "nonlinear", "assignment": "confounded"}


def test_true_form_reference_recovers_h_with_many_patients():
    """Knowing the truth's form, only estimation noise is left: with 20,000 patients it is nearly gone,
    under confounding too (the true g adjusts for it without weights)."""
    for h_form in ("linear", "nonlinear"):
        train = simulate(20_000, 10, h_form=h_form, assignment="confounded", seed=5)
        test = simulate(2000, 10, h_form=h_form, assignment="confounded", seed=6)
        h = fit_true_form_logistic(train, True, 0)(test).h
        assert abs(np.mean(h - test.h)) < 0.06, h_form
        assert spearmanr(h, test.h).statistic > 0.99, h_form


def _run(seeds, methods, command):
    outcome = run_setting(SETTING, seeds, methods)
    key = "confounded/h=nonlinear/n=300/p=10"
    return {"command": command, "seed_set": "evaluation", "seeds": seeds, "n_test": 2000, "methods": methods,
            "wall_s": 1.0, "machine": {"packages": {"numpy": np.__version__}, "jobs": 1}, "results": {key: outcome}}


def test_merging_parts_and_a_rerun_of_some_methods():
    first, second = _run([1], CHEAP, "part one"), _run([2], CHEAP, "part two")
    parts = merge([first, second])
    rows = parts["results"]["confounded/h=nonlinear/n=300/p=10"]["rows"]
    assert [r["seed"] for r in rows["linear_logistic"]] == [1, 2]
    assert parts["merged_from"] == ["part one", "part two"]

    rerun = _run([1, 2], ["true_form_logistic"], "rerun")
    for row in rerun["results"]["confounded/h=nonlinear/n=300/p=10"]["rows"]["true_form_logistic"]:
        row["bias_h"] = 9.0  # marks the rerun's rows
    again = merge([rerun, parts])  # a merge merges again; the run listed first keeps its rows
    assert again["merged_from"] == ["rerun", "part one", "part two"]
    result = again["results"]["confounded/h=nonlinear/n=300/p=10"]
    assert [r["bias_h"] for r in result["rows"]["true_form_logistic"]] == [9.0, 9.0]
    assert result["summary"]["true_form_logistic"]["mean_abs_bias"] == 9.0
    assert [r["seed"] for r in result["rows"]["linear_logistic"]] == [1, 2]
    assert again["machine"]["jobs"] == [1, 1, 1]
