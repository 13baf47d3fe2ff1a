"""The per-case report: a PNG a clinician reads at a glance and a self-contained HTML page.

The picture shows the three picked slices of each phase with the tumour outline, the two PD risks,
and the patient's interaction score against the training cohort's distribution. The page repeats the
numbers of result.json in tables. Neither carries a patient identifier unless result.json does.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written headless, from the CLI, tests and Slicer alike
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

WINDOW = (-85.0, 165.0)  # W250/L40, as the study reads the slices
THERAPY_COLOURS = {"TACE": "#1f77b4", "HAIC": "#d62728"}


def _liver_box(label: np.ndarray, margin: int = 12) -> tuple[slice, slice]:
    """In-plane box around the liver (label >= 1) over the whole volume, so every panel shares it."""
    rows = np.flatnonzero(label.any(axis=(0, 2)))
    cols = np.flatnonzero(label.any(axis=(0, 1)))
    if rows.size == 0:
        return slice(None), slice(None)
    return (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
            slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))


def _draw_slices(axes_rows, images: Mapping[str, sitk.Image], label: sitk.Image, indices: Sequence[int],
                 captions: Sequence[str]) -> None:
    """One row per phase, one panel per slice: CT at W250/L40, liver outline blue, tumour outline yellow."""
    label_array = sitk.GetArrayViewFromImage(label)
    box = _liver_box(label_array)
    sx, sy = label.GetSpacing()[:2]
    for axes, (phase, image) in zip(axes_rows, images.items()):
        array = sitk.GetArrayViewFromImage(image)
        for ax, z, caption in zip(axes, indices, captions):
            ax.imshow(array[z][box], cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=sy / sx)
            for mask, colour, width in ((label_array[z][box] >= 1, "#39c0ff", 0.8),
                                        (label_array[z][box] == 2, "#ffd400", 1.2)):
                if mask.any():
                    ax.contour(mask, levels=[0.5], colors=colour, linewidths=width)
            ax.set_title(f"{phase} · slice {z}{caption}", fontsize=9)
            ax.set_axis_off()


def _draw_risks(ax, risk: Mapping[str, float]) -> None:
    values = [risk["p_pd_tace"], risk["p_pd_haic"]]
    bars = ax.bar(["TACE", "HAIC"], values, color=[THERAPY_COLOURS["TACE"], THERAPY_COLOURS["HAIC"]])
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.02, f"{value:.0%}", ha="center", fontsize=10)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("P(progressive disease)")
    ax.set_title("Risk of PD under each therapy", fontsize=10)


def _draw_score(ax, score: Mapping[str, float], cutoff: float, training_h: Sequence[float] | None) -> None:
    if training_h is not None and len(training_h):
        ax.hist(training_h, bins=30, color="#bbbbbb", label="training cohort")
    ax.axvspan(-cutoff, cutoff, color="#f3e3a0", alpha=0.6, label="no clear preference") if cutoff > 0 else None
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.axvline(score["h"], color="#6a3d9a", linewidth=2.5, label="this patient")
    if score.get("lower") is not None:
        ax.axvspan(score["lower"], score["upper"], color="#6a3d9a", alpha=0.2, label="interval")
    ax.set_xlabel("interaction score h(x)  (← HAIC better · TACE better →)")
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="upper right")
    percentile = score.get("training_percentile")
    where = f" · {percentile:.0f}th percentile of training" if percentile is not None else ""
    ax.set_title(f"h = {score['h']:+.2f}{where}", fontsize=10)


def write_png(path: Path, result: Mapping, images: Mapping[str, sitk.Image], label: sitk.Image,
              training_h: Sequence[float] | None = None) -> Path:
    """Draw the report picture to ``path``: slices of each phase (rows) beside risks and score."""
    slices = result["slices"]
    n_cols = max(len(slices), 1)
    fig = plt.figure(figsize=(3.2 * n_cols + 5, 3.3 * len(images)), constrained_layout=True)
    grid = fig.add_gridspec(len(images), n_cols + 2)
    axes_rows = [[fig.add_subplot(grid[row, col]) for col in range(len(slices))] for row in range(len(images))]
    _draw_slices(axes_rows, images, label, [int(s["index"]) for s in slices],
                 [f" · {s['area_mm2']:,.0f} mm²" for s in slices])
    side = grid[:, n_cols:].subgridspec(2, 1)
    _draw_risks(fig.add_subplot(side[0]), result["risk"])
    _draw_score(fig.add_subplot(side[1]), result["interaction_score"], result["cutoff"], training_h)
    fig.suptitle(f"DELICAITE recommendation: {result['recommendation']}    ({result['model']['note']})", fontsize=12)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_segmentation_preview(path: Path, image: sitk.Image, label: sitk.Image, n_slices: int = 3) -> Path:
    """Three axial slices spread through the liver (25/50/75 % of its extent) with the outlines."""
    from .io import label_volumes_ml

    liver_slices = np.flatnonzero((sitk.GetArrayViewFromImage(label) >= 1).any(axis=(1, 2)))
    if liver_slices.size == 0:
        indices = [image.GetSize()[2] // 2]
    else:
        quantiles = np.linspace(0, 1, n_slices + 2)[1:-1]
        indices = sorted({int(v) for v in np.quantile(liver_slices, quantiles, method="nearest")})
    volumes = label_volumes_ml(label)
    fig, axes = plt.subplots(1, len(indices), figsize=(3.4 * len(indices), 3.6), constrained_layout=True, squeeze=False)
    _draw_slices(axes, {"CT": image}, label, indices, [""] * len(indices))
    fig.suptitle(f"liver {volumes['liver_ml']:.0f} mL · tumour {volumes['tumour_ml']:.0f} mL", fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _table(rows: Sequence[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def write_html(path: Path, result: Mapping, png_path: Path) -> Path:
    """A one-file HTML page: the picture embedded, then the numbers of result.json."""
    picture = base64.b64encode(Path(png_path).read_bytes()).decode("ascii")
    score, risk = result["interaction_score"], result["risk"]
    summary = [
        ("Recommendation", result["recommendation"]),
        ("P(PD | TACE)", f"{risk['p_pd_tace']:.3f}"),
        ("P(PD | HAIC)", f"{risk['p_pd_haic']:.3f}"),
        ("Interaction score h", f"{score['h']:+.3f}"),
        (f"{score['interval_level']:.0%} interval", f"[{score['lower']:+.3f}, {score['upper']:+.3f}]"),
        ("Cutoff c", f"{result['cutoff']:.3f}  (HAIC when h < −c, TACE when h > c)"),
        ("Missing inputs (set to the training mean)", ", ".join(result.get("imputed_with_training_mean", [])) or "none"),
    ]
    if result.get("mask_source", "given") != "given":
        summary.append(("Tumour mask", result["mask_source"]))
    if result.get("alignment", {}).get("single_phase"):
        summary.append(("Phases", "one image given as both AP and VP: the phase contrast is not used"))
    slices = [(f"slice {s['index']}", f"{s['area_mm2']:.1f} mm²") for s in result["slices"]]
    drivers = [(d["feature"], f"{d['contribution']:+.3f}") for d in result.get("drivers", [])]
    model = [(k, v) for k, v in result["model"].items() if not isinstance(v, (dict, list))]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DELICAITE report</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:1em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
th{{background:#f4f4f4}}.note{{background:#fff3cd;padding:0.5em 1em;border:1px solid #e0c36a}}</style></head>
<body><h1>DELICAITE: TACE or HAIC</h1>
<p class="note">{html.escape(result['model']['note'])}</p>
<img src="data:image/png;base64,{picture}" alt="tumour slices of both phases, risks and interaction score" style="width:100%">
<h2>Result</h2>{_table(summary)}
<h2>Largest tumour slices</h2>{_table(slices)}
<h2>What drives the score</h2>{_table(drivers) if drivers else '<p>not available for this model</p>'}
<h2>Model</h2>{_table(model)}
<p>Generated by DELICAITE {html.escape(str(result['delicaite_version']))} on {html.escape(str(result['created']))}.</p>
</body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)
