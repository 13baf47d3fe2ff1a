"""Baseline table (Table 1) and logistic-regression table (Table 2) in the study's style.

table1: continuous variables as "median (Q1–Q3)" tested with the Wilcoxon rank-sum test (two groups,
scipy's two-sided Mann–Whitney U) or Kruskal–Wallis (more); categorical variables as "n (x.x %)" per
level tested with χ² (scipy chi2_contingency, Yates-corrected for 2×2) or Fisher's exact test (2×2
with an expected count < 5). Missing values get their own "missing" row (percentages are of the whole
group, so a variable's rows add up to 100 %) and are left out of the test, never merged into a level.

logistic_table: statsmodels Logit, OR = exp(coef) with a Wald CI and p; numeric variables per unit,
categorical ones (text columns and the schema's categorical fields) one indicator per level against
a reference (the schema's reference level, else the most common one). Each model uses its complete
cases; the number used is reported. Perfect or quasi-complete separation is an error by default.
"""

from __future__ import annotations

import re
import warnings
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.sm_exceptions import PerfectSeparationError

from ..clinical.encoding import ONE_HOT
from ..clinical.schema import SCHEMA
from ..errors import DelicaiteError

MAX_LEVELS_AS_CATEGORY = 5  # a numeric column with at most this many distinct values is shown by level
_REFERENCE = {name: ref for name, ref, _ in ONE_HOT}


def _label(name: str) -> str:
    f = SCHEMA.get(name)
    return name if f is None else f.label + (f", {f.unit}" if f.unit else "")


def _is_categorical(series: pd.Series, name: str, categorical) -> bool:
    if categorical is not None and name in categorical:
        return True
    f = SCHEMA.get(name)
    if f is not None and f.kind in ("binary", "categorical"):
        return True
    if f is not None and f.kind == "continuous":
        return False
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return True
    return series.dropna().nunique() <= MAX_LEVELS_AS_CATEGORY


def _decimals(values: np.ndarray, most: int = 2) -> int:
    """The data's own precision: the fewest decimals (≤ most) that represent every value."""
    for d in range(most + 1):
        if np.allclose(np.round(values, d), values, rtol=0, atol=1e-9):
            return d
    return most


def _level_text(v) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _round(v: float, d: int) -> str:
    """v with d decimals, halves rounded up as in print (Python's own format rounds 2.25 to 2.2)."""
    return str(Decimal(repr(float(v))).quantize(Decimal(1).scaleb(-d), rounding=ROUND_HALF_UP))


def _median_iqr(x: np.ndarray, d: int) -> str:
    if x.size == 0:
        return "–"
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return f"{_round(med, d)} ({_round(q1, d)}–{_round(q3, d)})"


def format_p(p: float) -> str:
    """A p-value as tables print it: "<0.001", else three decimals ("" for NaN)."""
    return "" if p is None or np.isnan(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _count(n: int, total: int) -> str:
    return f"{n} ({100.0 * n / total:.1f} %)" if total else "0"


def _test_continuous(samples: list[np.ndarray]) -> tuple[str, float]:
    samples = [s for s in samples if s.size]
    if len(samples) < 2 or np.unique(np.concatenate(samples)).size < 2:
        return "", np.nan
    if len(samples) == 2:
        return "Wilcoxon rank-sum", float(stats.mannwhitneyu(*samples, alternative="two-sided").pvalue)
    return "Kruskal–Wallis", float(stats.kruskal(*samples).pvalue)


def _test_categorical(counts: np.ndarray) -> tuple[str, float]:
    counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]  # drop empty levels / groups
    if counts.shape[0] < 2 or counts.shape[1] < 2:
        return "", np.nan
    expected = stats.contingency.expected_freq(counts)
    if counts.shape == (2, 2) and expected.min() < 5:
        return "Fisher exact", float(stats.fisher_exact(counts).pvalue)
    name = "χ²" if expected.min() >= 5 else "χ² (expected count < 5)"
    return name, float(stats.chi2_contingency(counts).pvalue)


def table1(df: pd.DataFrame, group_column: str, variables=None, categorical=None, groups=None,
           overall: str = "Overall") -> pd.DataFrame:
    """Baseline table: one row per continuous variable or per level of a categorical one.

    Columns: variable, label, level, one per group (in `groups` order, default sorted), `overall`, test, p
    (test and p on each variable's first row). The first row, variable "N", counts patients. `variables`
    defaults to every column except the group and patient_id that has at least one value (attrs["notes"]
    says which were skipped). `categorical` forces listed numeric columns to be shown by level. Patients
    with a missing group appear only in the overall column (noted in attrs["notes"]).
    """
    if group_column not in df:
        raise DelicaiteError(f"table1: no column {group_column!r} to group by; columns are {', '.join(map(str, df.columns))}")
    notes = []
    if variables is None:
        candidates = [c for c in df.columns if c not in (group_column, "patient_id")]
        variables = [c for c in candidates if df[c].notna().any()]
        empty = [c for c in candidates if c not in variables]
        if empty:
            notes.append(f"no values at all, not shown: {', '.join(empty)}")
    absent = [v for v in variables if v not in df]
    if absent:
        raise DelicaiteError(f"table1: columns not in the table: {', '.join(absent)}")
    g = df[group_column]
    if groups is None:
        groups = sorted(g.dropna().unique(), key=str)
    if len(groups) < 2:
        raise DelicaiteError(f"table1: {group_column!r} needs at least two groups, found {list(groups)}")
    if g.isna().any():
        notes.append(f"{int(g.isna().sum())} patients with missing {group_column} appear only in {overall}")
    masks = [(str(k), (g == k).to_numpy()) for k in groups] + [(overall, np.ones(len(df), bool))]
    cols = [name for name, _ in masks]
    rows = [{"variable": "N", "label": "N", "level": "", **{c: str(int(m.sum())) for c, m in masks},
             "test": "", "p": np.nan}]
    for var in variables:
        s = df[var]
        if _is_categorical(s, var, categorical):
            levels = sorted(s.dropna().unique(), key=lambda v: (str(type(v)), v))
            counts = np.array([[int(((s == lv).to_numpy() & m).sum()) for _, m in masks[:-1]] for lv in levels])
            test, p = _test_categorical(counts) if len(levels) else ("", np.nan)
            for i, lv in enumerate(levels):
                rows.append({"variable": var, "label": _label(var), "level": _level_text(lv),
                             **{c: _count(int(((s == lv).to_numpy() & m).sum()), int(m.sum())) for c, m in masks},
                             "test": test if i == 0 else "", "p": p if i == 0 else np.nan})
        else:
            x = pd.to_numeric(s, errors="coerce").to_numpy(float)
            d = _decimals(x[~np.isnan(x)])
            test, p = _test_continuous([x[m & ~np.isnan(x)] for _, m in masks[:-1]])
            rows.append({"variable": var, "label": _label(var), "level": "median (IQR)",
                         **{c: _median_iqr(x[m & ~np.isnan(x)], d) for c, m in masks}, "test": test, "p": p})
        missing = s.isna().to_numpy()
        if missing.any():
            rows.append({"variable": var, "label": _label(var), "level": "missing",
                         **{c: _count(int((missing & m).sum()), int(m.sum())) for c, m in masks}, "test": "", "p": np.nan})
    out = pd.DataFrame(rows, columns=["variable", "label", "level", *cols, "test", "p"])
    out.attrs["notes"] = notes
    return out


# ------------------------------------------------------------------ logistic regression

def _design(df: pd.DataFrame, var: str, categorical) -> pd.DataFrame:
    """Columns of the design matrix for one variable (NaN rows where the variable is missing)."""
    s = df[var]
    f = SCHEMA.get(var)
    forced = categorical is not None and var in categorical
    if forced or (f is not None and f.kind == "categorical") or not pd.api.types.is_numeric_dtype(s):
        values = s.map(lambda v: v if pd.isna(v) else _level_text(v))
        levels = sorted(values.dropna().unique())
        ref = _REFERENCE.get(var)
        if ref not in levels:
            ref = values.value_counts().index[0] if len(levels) else None
        cols = {f"{var}: {lv} vs {ref}": np.where(values.isna(), np.nan, (values == lv).astype(float))
                for lv in levels if lv != ref}
        return pd.DataFrame(cols, index=df.index)
    return pd.DataFrame({var: pd.to_numeric(s, errors="coerce").astype(float)}, index=df.index)


def _separation(x: pd.DataFrame, y: np.ndarray, outcome: str) -> str | None:
    """Why the data separate y (a design column with no events or no non-events at one of its values)."""
    for col in x.columns:
        values = np.unique(x[col])
        if len(values) <= 2 and len(values) > 1:  # indicator: check each cell of the 2×2 table
            for v in values:
                ys = y[x[col].to_numpy() == v]
                if ys.min() == ys.max():
                    return f"{col} = {_level_text(v)}: every patient has {outcome} = {int(ys[0])}"
    return None


def _fit(x: pd.DataFrame, y: np.ndarray, outcome: str, what: str):
    reason = _separation(x, y, outcome)
    if reason is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit = sm.Logit(y, sm.add_constant(x, has_constant="add")).fit(disp=0, maxiter=200)
            except PerfectSeparationError:
                fit = None
            except np.linalg.LinAlgError:
                raise DelicaiteError(f"logistic_table: {what}: the covariates are collinear; drop one of "
                                     f"{', '.join(x.columns)}") from None
            prob = fit.predict() if fit is not None else np.array([0.0])  # may overflow when separated
        # separation: Newton never converges, or fitted 0/1 probabilities with exploding standard errors
        # (extreme probabilities alone can be legitimate, e.g. AFP per ng/mL at 500 000 ng/mL)
        extreme = fit is not None and (prob.min() < 1e-8 or prob.max() > 1 - 1e-8)
        if fit is None or not fit.mle_retvals.get("converged", True) or (
                extreme and np.max(np.asarray(fit.bse) / (1 + np.abs(np.asarray(fit.params)))) > 100):
            reason = f"the fitted probabilities reach 0 or 1 ({', '.join(x.columns)})"
        else:
            return fit
    raise DelicaiteError(f"logistic_table: {what}: perfect separation of {outcome} ({reason}); the odds ratio "
                         "is infinite. Drop or merge that variable's levels, or use on_separation='skip'")


def _rows(fit, columns) -> dict:
    ci = np.asarray(fit.conf_int())
    names = list(fit.model.exog_names)
    out = {}
    for col in columns:
        i = names.index(col)
        out[col] = (float(np.exp(fit.params.iloc[i])), float(np.exp(ci[i, 0])), float(np.exp(ci[i, 1])),
                    float(fit.pvalues.iloc[i]))
    return out


def logistic_table(df: pd.DataFrame, outcome: str, variables, multivariate=None, categorical=None,
                   on_separation: str = "raise") -> pd.DataFrame:
    """Univariate logistic regression per variable, then one multivariate model.

    multivariate: None (univariate only), a list of variables, or "p<0.1" (any threshold, "p<0.05"…):
    the variables with a univariate p below it on any of their terms. Returns one row per term:
    variable, term, uni_n, uni_or, uni_lo, uni_hi, uni_p, multi_or, multi_lo, multi_hi, multi_p, note;
    attrs["multivariate"] lists the variables in the multivariate model and attrs["multi_n"] its n.
    on_separation: "raise" (DelicaiteError naming the variable) or "skip" (NaN row with a note).
    """
    if on_separation not in ("raise", "skip"):
        raise DelicaiteError(f"on_separation must be 'raise' or 'skip', got {on_separation!r}")
    variables = list(variables)
    absent = [v for v in [outcome, *variables] if v not in df]
    if absent:
        raise DelicaiteError(f"logistic_table: columns not in the table: {', '.join(absent)}")
    y_all = pd.to_numeric(df[outcome], errors="coerce")
    if not y_all.dropna().isin([0, 1]).all():
        raise DelicaiteError(f"logistic_table: outcome {outcome!r} must be 0/1")
    designs = {v: _design(df, v, categorical) for v in variables}
    rows, uni_p = [], {}
    for var in variables:
        x = designs[var]
        keep = y_all.notna() & x.notna().all(axis=1)
        base = {"variable": var, "uni_n": int(keep.sum())}
        try:
            if x.shape[1] == 0 or x[keep].nunique().min() < 2:
                raise DelicaiteError(f"logistic_table: {var} has a single value among the complete cases; drop it")
            fit = _fit(x[keep], y_all[keep].to_numpy(int), outcome, f"univariate {var}")
        except DelicaiteError as err:
            if on_separation == "raise":
                raise
            rows += [{**base, "term": c, "note": str(err).removeprefix("logistic_table: ")} for c in (x.columns if x.shape[1] else [var])]
            continue
        for col, (o, lo, hi, p) in _rows(fit, x.columns).items():
            rows.append({**base, "term": col, "uni_or": o, "uni_lo": lo, "uni_hi": hi, "uni_p": p, "note": ""})
            uni_p[var] = min(uni_p.get(var, 1.0), p)
    table = pd.DataFrame(rows, columns=["variable", "term", "uni_n", "uni_or", "uni_lo", "uni_hi", "uni_p",
                                        "multi_or", "multi_lo", "multi_hi", "multi_p", "note"])
    chosen = _choose(multivariate, variables, uni_p)
    table.attrs["multivariate"], table.attrs["multi_n"] = chosen, 0
    if chosen:
        x = pd.concat([designs[v] for v in chosen], axis=1)
        keep = y_all.notna() & x.notna().all(axis=1)
        fit = _fit(x[keep], y_all[keep].to_numpy(int), outcome, f"multivariate model ({', '.join(chosen)})")
        for col, values in _rows(fit, x.columns).items():
            table.loc[table["term"] == col, ["multi_or", "multi_lo", "multi_hi", "multi_p"]] = values
        table.attrs["multi_n"] = int(keep.sum())
    return table


def _choose(multivariate, variables: list, uni_p: dict) -> list:
    if multivariate is None:
        return []
    if isinstance(multivariate, str):
        match = re.fullmatch(r"\s*p\s*<\s*([0-9.]+)\s*", multivariate)
        if not match:
            raise DelicaiteError(f"multivariate must be None, a list of variables or 'p<0.1', got {multivariate!r}")
        return [v for v in variables if uni_p.get(v, 1.0) < float(match.group(1))]
    chosen = list(multivariate)
    unknown = [v for v in chosen if v not in variables]
    if unknown:
        raise DelicaiteError(f"multivariate variables must also be in `variables`: {', '.join(unknown)}")
    return chosen
