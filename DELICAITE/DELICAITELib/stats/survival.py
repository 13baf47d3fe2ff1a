"""Kaplan–Meier curves per group with median survival and its CI, and the log-rank test (lifelines).

The median's CI comes from the Kaplan–Meier confidence band (lifelines' exponential Greenwood
interval): the times at which the band's upper and lower curves cross ½
(`lifelines.utils.median_survival_times` applied to the confidence interval). A median or bound that
is never reached is +inf ("not reached"). Two groups: `logrank_test`; more: the k-group
`multivariate_logrank_test` plus pairwise log-rank p-values (unadjusted).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from lifelines.utils import median_survival_times

from ..errors import DelicaiteError


def _check(time, event, group):
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    g = pd.Series(np.asarray(group, dtype=object))
    if not (len(t) == len(e) == len(g)):
        raise DelicaiteError(f"time, event and group must have one value per patient, got {len(t)}, {len(e)}, {len(g)}")
    if not np.isfinite(t).all() or (t < 0).any():
        raise DelicaiteError("survival times must be finite and >= 0 (months); "
                             f"{int((~np.isfinite(t) | (t < 0)).sum())} are not")
    if not np.isin(e, (0.0, 1.0)).all():
        raise DelicaiteError("event must be 1 (died / event) or 0 (censored) for every patient")
    if g.isna().any():
        raise DelicaiteError(f"group has {int(g.isna().sum())} missing values; drop those patients or label them")
    if g.nunique() < 1 or len(t) == 0:
        raise DelicaiteError("no patients to analyse")
    return t, e.astype(int), g.astype(str).to_numpy()


def _groups(g: np.ndarray, order) -> list[str]:
    names = sorted(set(g)) if order is None else [str(x) for x in order]
    unknown = sorted(set(g) - set(names))
    if unknown:
        raise DelicaiteError(f"groups {unknown} are not in the given order {names}")
    return [n for n in names if (g == n).any()]


def fit_km(time, event, level: float = 0.95, label: str | None = None) -> KaplanMeierFitter:
    """A fitted lifelines KaplanMeierFitter with a `level` confidence band."""
    if not 0 < level < 1:
        raise DelicaiteError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    return KaplanMeierFitter(alpha=1 - level).fit(time, event, label=label)


def median_with_ci(kmf: KaplanMeierFitter) -> tuple[float, float, float]:
    """(median, lo, hi) survival time of a fitted KaplanMeierFitter; inf where not reached."""
    ci = median_survival_times(kmf.confidence_interval_)
    return float(kmf.median_survival_time_), float(ci.iloc[0, 0]), float(ci.iloc[0, 1])


def km_groups(time, event, group, level: float = 0.95, order=None) -> dict:
    """Kaplan–Meier per group and the log-rank test between the groups.

    Returns dict(groups: {name: {n, events, median, median_lo, median_hi}}, logrank_p, statistic,
    test, pairwise: {(a, b): p} (more than two groups only)). With one group, logrank_p is NaN.
    """
    t, e, g = _check(time, event, group)
    names = _groups(g, order)
    out = {"groups": {}, "logrank_p": np.nan, "statistic": np.nan, "test": "", "pairwise": {}}
    for name in names:
        m = g == name
        median, lo, hi = median_with_ci(fit_km(t[m], e[m], level, label=name))
        out["groups"][name] = {"n": int(m.sum()), "events": int(e[m].sum()), "median": median,
                               "median_lo": lo, "median_hi": hi}
    if len(names) == 2:
        a, b = (g == names[0]), (g == names[1])
        res = logrank_test(t[a], t[b], e[a], e[b])
        out.update(logrank_p=float(res.p_value), statistic=float(res.test_statistic), test="log-rank")
    elif len(names) > 2:
        keep = np.isin(g, names)
        res = multivariate_logrank_test(t[keep], g[keep], e[keep])
        out.update(logrank_p=float(res.p_value), statistic=float(res.test_statistic),
                   test=f"log-rank ({len(names)} groups)")
        for x, y in combinations(names, 2):
            a, b = g == x, g == y
            out["pairwise"][(x, y)] = float(logrank_test(t[a], t[b], e[a], e[b]).p_value)
    return out


def _p_text(p: float) -> str:
    return "" if np.isnan(p) else ("P < 0.001" if p < 0.001 else f"P = {p:.3f}")


def plot_km(ax, time, event, group, title: str = "", level: float = 0.95, order=None, at_risk: bool = True,
            xlabel: str = "Months"):
    """Draw one Kaplan–Meier curve (with its confidence band) per group on matplotlib `ax`, the log-rank
    p in the title and, when `at_risk`, the numbers at risk under the axis. Returns km_groups' dict."""
    t, e, g = _check(time, event, group)
    result = km_groups(t, e, g, level=level, order=order)
    fitters = []
    for name, info in result["groups"].items():
        m = g == name
        kmf = fit_km(t[m], e[m], level, label=f"{name} (n={info['n']})")
        kmf.plot_survival_function(ax=ax, ci_show=True, show_censors=True)
        fitters.append(kmf)
    p = _p_text(result["logrank_p"])
    ax.set_title(f"{title}\nlog-rank {p}" if title and p else title or (f"log-rank {p}" if p else ""))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Survival probability")
    ax.set_ylim(0, 1.02)
    if at_risk:
        from lifelines.plotting import add_at_risk_counts

        add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"])
    return result
