"""The per-case report: a PNG a clinician reads at a glance and a self-contained HTML page.

The picture shows the three picked slices of each phase with the tumour outline, the two PD risks,
and the patient's interaction score against the training cohort's distribution. The page repeats the
numbers of result.json in tables. Neither carries a patient identifier unless the result does.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..pictures import draw_slices, plt
from ..recommendation import NO_PREFERENCE, SPREAD_MEANING, SPREAD_NAME, InteractionScore, Risks
from .prepare import GIVEN_MASK
from .result import CaseResult

THERAPY_COLOURS = {"TACE": "#1f77b4", "HAIC": "#d62728"}


def _draw_risks(ax, risk: Risks) -> None:
    values = [risk.p_pd_tace, risk.p_pd_haic]
    bars = ax.bar(["TACE", "HAIC"], values, color=[THERAPY_COLOURS["TACE"], THERAPY_COLOURS["HAIC"]])
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.02, f"{value:.0%}", ha="center", fontsize=10)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("P(progressive disease)")
    ax.set_title("Risk of PD under each therapy", fontsize=10)


def _draw_score(ax, score: InteractionScore, cutoff: float, training_h: Sequence[float] | None) -> None:
    if training_h is not None and len(training_h):
        ax.hist(training_h, bins=30, color="#bbbbbb", label="training cohort")
    if cutoff > 0:
        ax.axvspan(-cutoff, cutoff, color="#f3e3a0", alpha=0.6, label=NO_PREFERENCE)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.axvline(score.h, color="#6a3d9a", linewidth=2.5, label="this patient")
    ax.axvspan(score.lower, score.upper, color="#6a3d9a", alpha=0.2, label=SPREAD_NAME)
    ax.set_xlabel("interaction score h(x)  (← HAIC better · TACE better →)")
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(f"h = {score.h:+.2f} · {score.training_percentile:.0f}th percentile of training", fontsize=10)


def write_png(path: Path, result: CaseResult, images: Mapping[str, sitk.Image], label: sitk.Image,
              training_h: Sequence[float] | None = None) -> Path:
    """Draw the report picture to ``path``: slices of each phase (rows) beside risks and score."""
    prediction, slices = result.prediction, result.slices
    n_cols = max(len(slices), 1)
    fig = plt.figure(figsize=(3.2 * n_cols + 5, 3.3 * len(images)), constrained_layout=True)
    grid = fig.add_gridspec(len(images), n_cols + 2)
    axes_rows = [[fig.add_subplot(grid[row, col]) for col in range(len(slices))] for row in range(len(images))]
    draw_slices(axes_rows, images, label, [s.index for s in slices], [f" · {s.area_mm2:,.0f} mm²" for s in slices])
    side = grid[:, n_cols:].subgridspec(2, 1)
    _draw_risks(fig.add_subplot(side[0]), prediction.risk)
    _draw_score(fig.add_subplot(side[1]), prediction.score, prediction.cutoff,
                None if training_h is None else np.asarray(training_h))
    fig.suptitle(f"DELICAITE recommendation: {prediction.recommendation}    ({result.model['note']})", fontsize=12)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _table(rows: Sequence[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def write_html(path: Path, result: CaseResult, png_path: Path) -> Path:
    """A one-file HTML page: the picture embedded, then the numbers of result.json."""
    picture = base64.b64encode(Path(png_path).read_bytes()).decode("ascii")
    p = result.prediction
    summary = [
        ("Recommendation", f"{p.recommendation} ({p.reason})"),
        ("P(PD | TACE)", f"{p.risk.p_pd_tace:.3f}"),
        ("P(PD | HAIC)", f"{p.risk.p_pd_haic:.3f}"),
        ("Interaction score h", f"{p.score.h:+.3f}"),
        (f"{p.score.interval_level:.0%} {SPREAD_NAME}", f"[{p.score.lower:+.3f}, {p.score.upper:+.3f}] ({SPREAD_MEANING})"),
        ("Rule", f"{p.rule} (c = {p.cutoff:g})"),
        (f"Missing inputs (set to the {result.model.get('imputation', 'training value')})", ", ".join(p.imputed) or "none"),
    ]
    if result.mask_source != GIVEN_MASK:
        summary.append(("Tumour mask", result.mask_source))
    if result.single_phase:
        summary.append(("Phases", "one image given as both AP and VP: the phase contrast is not used"))
    for warning in result.warnings:
        summary.append(("Warning", warning))
    slices = [(f"slice {s.index}", f"{s.area_mm2:.1f} mm²") for s in result.slices]
    drivers = [(d.feature, f"{d.contribution:+.3f}") for d in p.drivers]
    model = [(k, v) for k, v in result.model.items() if not isinstance(v, (dict, list))]
    note = html.escape(result.model["note"])
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DELICAITE report</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:1em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
th{{background:#f4f4f4}}.note{{background:#fff3cd;padding:0.5em 1em;border:1px solid #e0c36a}}</style></head>
<body><h1>DELICAITE: TACE or HAIC</h1>
<p class="note">{note}</p>
<img src="data:image/png;base64,{picture}" alt="tumour slices of both phases, risks and interaction score" style="width:100%">
<h2>Result</h2>{_table(summary)}
<h2>Largest tumour slices</h2>{_table(slices)}
<h2>What drives the score</h2>{_table(drivers) if drivers else '<p>not available for this model</p>'}
<h2>Model</h2>{_table(model)}
<p>Generated by DELICAITE {html.escape(result.delicaite_version)} on {html.escape(result.created)}.</p>
</body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)
