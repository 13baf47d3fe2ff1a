"""The study's statistics (PAPER.md, "Statistics used"), one module per job.

- `delong`: own fast DeLong (Sun & Xu 2014, midranks): `auc_and_variance(y, scores)`,
  `delong_test(y, scores_a, scores_b)` → `DelongResult(auc_a, auc_b, difference, se, z, p)` (paired,
  two-sided), `delong_ci(y, scores, level)`, `delong_covariance(y, score_matrix)` (k scores at once).
- `classification`: `auc_or_none` (None for one class), `bootstrap_auc_ci` (stratified percentile bootstrap), `youden_threshold` (fix it on
  training), `threshold_metrics` / `threshold_metrics_ci` (acc, sen, spe, ppv, npv, f1 at a fixed
  threshold), `confusion_counts`, `calibration` (bins, Brier, calibration intercept and slope).
- `tables`: `table1(df, group_column, variables)` (median (IQR) / n (%), Wilcoxon rank-sum,
  Kruskal–Wallis, χ², Fisher exact; missing values in their own row), `logistic_table(df, outcome,
  variables, multivariate)` (statsmodels Logit ORs with Wald CIs; separation is a clear error),
  `format_p`.
- `survival`: `km_groups(time, event, group)` (lifelines Kaplan–Meier medians with CIs, log-rank),
  `plot_km(ax, time, event, group, title)` (curves with numbers at risk), `fit_km`, `median_with_ci`.
- `policy`: `ipw_policy_value(outcome_good, received, recommended, propensity)` (IPW value of a therapy
  rule, Hájek and Horvitz–Thompson, bootstrap CI), `compare_policies` (recommended / all TACE /
  all HAIC / as treated), `fit_propensity`.

Conventions: outcome 1 = event (PD) for classification; errors the user can fix are DelicaiteError.
"""

from .classification import (auc_or_none, bootstrap_auc_ci, calibration, confusion_counts, threshold_metrics,
                             threshold_metrics_ci, youden_threshold)
from .delong import DelongResult, auc_and_variance, delong_ci, delong_covariance, delong_test
from .policy import compare_policies, fit_propensity, ipw_policy_value
from .survival import fit_km, km_groups, median_with_ci, plot_km
from .tables import format_p, logistic_table, table1

__all__ = [
    "DelongResult", "auc_and_variance", "delong_test", "delong_ci", "delong_covariance",
    "auc_or_none", "bootstrap_auc_ci", "youden_threshold", "threshold_metrics", "threshold_metrics_ci", "confusion_counts",
    "calibration",
    "table1", "logistic_table", "format_p",
    "km_groups", "plot_km", "fit_km", "median_with_ci",
    "ipw_policy_value", "compare_policies", "fit_propensity",
]
