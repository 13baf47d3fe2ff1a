"""HTML building blocks of the evaluation reports and the single-therapy page.

Every number is formatted from the results dict after its JSON round trip (common.round_trip), so
the page shows exactly what results.json holds; figures are embedded as base64 PNG (they are also
files under figures/). Pages carry no patient identifiers.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ..clinical.schema import SCHEMA
from .common import EXTRA_LABELS, SET_LABELS, fmt, fmt_median, fmt_or, fmt_p

CSS = """body{font-family:sans-serif;max-width:1250px;margin:1em auto;color:#222;line-height:1.35}
table{border-collapse:collapse;margin:0.4em 0 0.6em;font-size:13px}
th,td{border:1px solid #ccc;padding:2px 7px;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.num{text-align:right;white-space:nowrap}.note{background:#fff3cd;padding:0.5em 1em;border:1px solid #e0c36a}
.caption{color:#555;font-size:13px;margin:0 0 1.2em;max-width:1100px}img{max-width:100%}
h2{border-bottom:2px solid #ddd;padding-bottom:2px;margin-top:1.6em}"""


def esc(value) -> str:
    return html.escape(str(value))


def label(variable: str) -> str:
    f = SCHEMA.get(variable)
    if f is not None:
        return f.label + (f", {f.unit}" if f.unit else "")
    return EXTRA_LABELS.get(variable, variable)


def table(header: list[str], rows: list[list], numeric_from: int = 1) -> str:
    """A table; cells from column `numeric_from` on are right-aligned (numbers)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='num'>{esc(c)}</td>" if i >= numeric_from else f"<td>{esc(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def caption(text: str) -> str:
    return f"<p class='caption'>{esc(text)}</p>"


def notes(items) -> str:
    return "".join(caption(f"Note: {n}") for n in items or [])


def figure(out_dir: Path, relative: str, alt: str, text: str = "") -> str:
    data = base64.b64encode((Path(out_dir) / relative).read_bytes()).decode("ascii")
    return f"<img src='data:image/png;base64,{data}' alt='{esc(alt)}'>" + (caption(text) if text else "")


def page(title: str, banner: list[str], body: str) -> str:
    notes_html = "".join(f"<p class='note'>{esc(b)}</p>" for b in banner)
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>{notes_html}{body}</body></html>\n")


# ------------------------------------------------------------------ Tables 1 and 2

def table1_html(records: dict, group_labels: dict[str, str] | None = None) -> str:
    """A stats.table1 result (as records): one row per variable or level, test and p on the first row."""
    cols = records["columns"]
    groups = cols[3:-2]
    header = ["Variable", "Level", *[(group_labels or {}).get(g, g) for g in groups], "Test", "p"]
    rows, previous = [], None
    for r in records["rows"]:
        row = dict(zip(cols, r))
        name = "" if row["variable"] == previous else ("N" if row["variable"] == "N" else label(row["variable"]))
        previous = row["variable"]
        rows.append([name, row["level"] or "", *[row[g] for g in groups], row["test"] or "",
                     fmt_p(row["p"]) if row["test"] else ""])
    return table(header, rows, numeric_from=2) + notes(records.get("notes"))


def logistic_html(section: dict) -> str:
    """Table 2: univariate and multivariate odds ratios for PD with 95 % Wald CIs."""
    t = section["table"]
    cols = t["columns"]
    rows, previous = [], None
    for r in t["rows"]:
        row = dict(zip(cols, r))
        term = row["term"]
        level = term.split(": ", 1)[1] if ": " in term else ""
        first = row["variable"] != previous
        name = label(row["variable"]) if first else ""
        previous = row["variable"]
        note = (row["note"] or "").split(": ", 1)[-1] if first else ""  # drop the "univariate <var>: " prefix
        has_multi = row["multi_or"] is not None
        rows.append([name, level, row["uni_n"], fmt_or((row["uni_or"], row["uni_lo"], row["uni_hi"])),
                     fmt_p(row["uni_p"]), fmt_or((row["multi_or"], row["multi_lo"], row["multi_hi"])) if has_multi else "",
                     fmt_p(row["multi_p"]) if has_multi else "", note])
    header = ["Variable", "Level (vs reference)", "n", "Univariate OR (95% CI)", "p", "Multivariate OR (95% CI)",
              "p", "Note"]
    chosen = t.get("multivariate") or []
    text = (f"Logistic regression for PD ({section['n_pd']} PD among {section['n']} patients with a known response). "
            f"Numeric variables per unit, categorical ones against their reference level; Wald 95 % CIs. "
            f"The multivariate model holds the variables with univariate {section['selection'].replace('p<', 'p < ')}"
            + (f" ({', '.join(label(v) for v in chosen)}; n = {t.get('multi_n')})." if chosen else "."))
    return table(header, rows, numeric_from=2) + caption(text) + notes(t.get("notes"))


# ------------------------------------------------------------------ survival

def km_rows(km: dict, what: str) -> list[list]:
    """One row per group: comparison, group, n, events, median OS (95 % CI), log-rank p (first row)."""
    rows = []
    for i, (name, g) in enumerate(km.get("groups", {}).items()):
        rows.append([what if i == 0 else "", name, g["n"], g["events"], fmt_median(g),
                     fmt_p(km.get("logrank_p")) if i == 0 else ""])
    if not rows:
        rows.append([what, "–", 0, 0, "–", "–"])
    return rows


KM_HEADER = ["Comparison", "Group", "n", "Deaths", "Median OS, months (95% CI)", "Log-rank p"]


# ------------------------------------------------------------------ the single-therapy page

def single_therapy_body(results: dict, figures: dict[str, str], out_dir: Path) -> str:
    meta = results["meta"]
    parts = [f"<p>{esc(meta['source'])}. Therapy: {esc(meta['therapy'])}; {meta['n']} patients, "
             f"{meta['n_pd_known']} with a known response (PD or disease control).</p>",
             caption("With a single therapy there is no interaction to estimate and no Maintain/Alter grouping; the "
                     "analyses that apply are the baseline table, the logistic regression for PD and survival by group.")]
    if meta.get("missing_fields"):
        parts.append(caption("Fields this table lacks (not shown): " + ", ".join(
            SCHEMA[f].label if f in SCHEMA else f for f in meta["missing_fields"])))
    parts += ["<h2>Table 1. Baseline characteristics by AFP group</h2>",
              table1_html(results["table1"]),
              caption("Median (IQR) or n (%). Wilcoxon rank-sum test for continuous variables, χ² or Fisher exact "
                      f"test for categorical ones; missing values in their own row. AFP missing: {meta['n_afp_missing']}."),
              "<h2>Table 2. Logistic regression for progressive disease</h2>", logistic_html(results["table2"]),
              "<h2>Overall survival: Kaplan–Meier by AFP group and by BCLC stage</h2>"]
    rows = km_rows(results["survival"]["afp"], "AFP group")
    if "bclc" in results["survival"]:
        rows += km_rows(results["survival"]["bclc"], "BCLC stage")
    parts.append(table(KM_HEADER, rows, numeric_from=2))
    pairwise = results["survival"].get("bclc", {}).get("pairwise", [])
    if pairwise:
        parts.append(caption("BCLC pairwise log-rank p (unadjusted): " +
                             "; ".join(f"{p['a']} vs {p['b']} {fmt_p(p['p'])}" for p in pairwise)))
    parts.append(caption("Median OS with the 95 % CI from the Kaplan–Meier confidence band (NR: not reached); "
                         "log-rank test (k groups for BCLC)."))
    for key, alt in (("km_afp", "Kaplan–Meier OS by AFP group"), ("km_bclc", "Kaplan–Meier OS by BCLC stage")):
        if key in figures:
            parts.append(figure(out_dir, figures[key], alt))
    return "".join(parts)


def single_therapy_html(results: dict, figures: dict[str, str], out_dir: Path, title: str, banner: list[str]) -> str:
    return page(title, banner, single_therapy_body(results, figures, out_dir))


def set_label(s: str) -> str:
    return SET_LABELS.get(s, s)


__all__ = ["page", "table", "caption", "notes", "figure", "table1_html", "logistic_html", "km_rows", "KM_HEADER",
           "single_therapy_html", "single_therapy_body", "fmt", "set_label", "esc"]
