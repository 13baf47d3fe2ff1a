"""The report's figures as PNG files (matplotlib, headless): ROC curves per set with every model,
calibration plots, Kaplan–Meier curves (Maintain vs Alter overall / within TACE / within HAIC, and the
single-therapy groupings), the distribution of h and, for a simulation, h against the true h.

Numbers printed on a figure (AUCs) are taken from the results dict, so they match the tables.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from ..stats import plot_km  # noqa: E402
from .common import ALL_TEST, ALTER, MAINTAIN, SET_LABELS, SETS, TEST_SETS, num  # noqa: E402

DPI = 100
KM_ORDER = [MAINTAIN, ALTER]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tight_layout with the at-risk tables
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def roc_figure(path: Path, frame: pd.DataFrame, names: list[str], table3: dict) -> Path:
    """One panel per set: every model's ROC curve, the AUC of Table 3 in the legend."""
    sets = [s for s in SETS if s in table3 and "note" not in table3[s]]
    fig, axes = plt.subplots(1, max(len(sets), 1), figsize=(4.6 * max(len(sets), 1), 4.6), squeeze=False)
    for ax, s in zip(axes[0], sets):
        m = ((frame["set"] == s) & frame["pd"].notna()).to_numpy()
        y = frame.loc[m, "pd"].to_numpy(int)
        for name in names:
            fpr, tpr, _ = roc_curve(y, frame.loc[m, f"p_{name}"].to_numpy(float))
            auc = num(table3[s][name]["auc"][0])
            ax.plot(fpr, tpr, lw=2.2 if name == names[0] else 1.3, label=f"{name} (AUC {auc:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set(title=f"{SET_LABELS[s]} (n = {int(m.sum())})", xlabel="1 − specificity", ylabel="Sensitivity",
               xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def calibration_figure(path: Path, calibration: dict, names: list[str]) -> Path:
    """One panel per set: observed PD rate against the mean predicted risk per decile, every model."""
    sets = [s for s in SETS if s in calibration]
    fig, axes = plt.subplots(1, max(len(sets), 1), figsize=(4.6 * max(len(sets), 1), 4.6), squeeze=False)
    for ax, s in zip(axes[0], sets):
        for name in names:
            c = calibration[s][name]
            ax.plot(c["bins"]["mean_predicted"], c["bins"]["observed"], marker="o", ms=3,
                    lw=2.2 if name == names[0] else 1.2, label=f"{name} (slope {num(c['slope']):.2f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set(title=SET_LABELS[s], xlabel="Predicted P(PD)", ylabel="Observed PD rate", xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def km_figure(path: Path, panels: list[tuple[pd.DataFrame, str, list | None]], group_column: str = "group",
              time: str = "os_months", event: str = "os_event") -> Path:
    """Kaplan–Meier panels side by side: each (frame, title, group order) with the log-rank p in its title."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 5.4), squeeze=False)
    for ax, (df, title, order) in zip(axes[0], panels):
        keep = df[group_column].isin(order) if order else df[group_column].notna()
        d = df[keep]
        if len(d) == 0:
            ax.set_title(f"{title}\n(no patients)")
            ax.set_axis_off()
            continue
        plot_km(ax, d[time].to_numpy(float), d[event].to_numpy(float), d[group_column].astype(str).to_numpy(),
                title=title, order=[o for o in order if (d[group_column] == o).any()] if order else None)
    return _save(fig, path)


def maintain_alter_figure(path: Path, frame: pd.DataFrame, label: str) -> Path:
    """Maintain vs Alter: all patients of the set, within TACE, within HAIC."""
    return km_figure(path, [(frame, f"{label}: overall", KM_ORDER),
                            (frame[frame["therapy"] == "TACE"], f"{label}: within TACE", KM_ORDER),
                            (frame[frame["therapy"] == "HAIC"], f"{label}: within HAIC", KM_ORDER)])


def h_figure(path: Path, frame: pd.DataFrame, cutoff: float) -> Path:
    """Distribution of the interaction score per set and, when the truth is known, h against the true h."""
    truth = "true_h" in frame
    fig, axes = plt.subplots(1, 2 if truth else 1, figsize=(11 if truth else 6, 4.4), squeeze=False)
    ax = axes[0][0]
    bins = np.histogram_bin_edges(frame["h"], bins=30)
    for s in SETS:
        m = frame["set"] == s
        if m.any():
            ax.hist(frame.loc[m, "h"], bins=bins, histtype="step", lw=1.5, density=True, label=SET_LABELS[s])
    ax.axvline(0, color="black", lw=0.8)
    if cutoff > 0:
        ax.axvspan(-cutoff, cutoff, color="#f3e3a0", alpha=0.6, label="no clear preference")
    ax.set(xlabel="interaction score h(x)  (← HAIC better · TACE better →)", ylabel="density",
           title="Estimated interaction score")
    ax.legend(fontsize=8)
    if truth:
        ax = axes[0][1]
        for s in SETS:
            m = frame["set"] == s
            ax.scatter(frame.loc[m, "true_h"], frame.loc[m, "h"], s=6, alpha=0.5, label=SET_LABELS[s])
        ax.axhline(0, color="grey", lw=0.6)
        ax.axvline(0, color="grey", lw=0.6)
        ax.set(xlabel="true h (simulation)", ylabel="estimated h", title="Estimated vs true interaction")
        ax.legend(fontsize=8, markerscale=2)
    return _save(fig, path)


def cohort_figures(out_dir: Path, results: dict, frame: pd.DataFrame) -> dict[str, str]:
    """Write every figure of the two-therapy report under out_dir/figures; {key: path relative to out_dir}."""
    fig_dir = Path(out_dir) / "figures"
    names = results["meta"]["models"]
    written = {"roc": roc_figure(fig_dir / "roc.png", frame, names, results["table3"]),
               "calibration": calibration_figure(fig_dir / "calibration.png", results["calibration"], names),
               "h": h_figure(fig_dir / "interaction_score.png", frame, num(results["meta"]["cutoff"]))}
    for s in results["survival"]:  # each set and the test sets pooled, as the survival section has them
        m = frame["set"].isin(TEST_SETS).to_numpy() if s == ALL_TEST else frame["set"].eq(s).to_numpy()
        if m.any():
            written[f"km_{s}"] = maintain_alter_figure(fig_dir / f"km_maintain_alter_{s}.png", frame[m], SET_LABELS[s])
    return {k: str(Path(v).relative_to(out_dir)) for k, v in written.items()}
