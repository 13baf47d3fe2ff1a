"""Which transformer block to take features from (PAPER.md, "Features": the study chose block 4 of 12 by
KNN classification AUC, Grad-CAM, t-SNE, silhouette and Calinski–Harabasz indices over the blocks).

``block_report`` scores every block on a labelled set (e.g. tumour vs healthy-liver patches): a cross-
validated KNN AUC, and how well the two classes cluster (silhouette, Calinski–Harabasz). The recommended
block is the one with the highest KNN AUC, the earliest one on a tie (shallower features are cheaper and
less specialised to the pretraining task). With ``out_dir`` it writes t-SNE maps, a chart of the indices
over the blocks and ``block_report.json``. Grad-CAM belongs to the supervised CNN (gradcam.py).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.metrics import calinski_harabasz_score, silhouette_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from ...jsonable import json_default  # noqa: E402

SELECTION_RULE = "highest cross-validated KNN AUC; the earliest block on a tie"
CLASS_COLOURS = ("#2c7fb8", "#d95f0e")  # class 0 blue, class 1 orange
DPI = 110


def knn_auc(features: np.ndarray, y: np.ndarray, *, n_neighbors: int, n_folds: int, seed: int) -> tuple[float, float]:
    """Mean and SD over stratified folds of the ROC AUC of a KNN classifier; the scaler is fitted inside
    each training fold so the held-out fold leaks nothing."""
    model = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=n_neighbors))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = cross_val_score(model, features, y, cv=folds, scoring="roc_auc")
    return float(scores.mean()), float(scores.std())


def cluster_indices(features: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Silhouette and Calinski–Harabasz index of the two classes, on standardised features so that a
    few large-valued dimensions do not decide alone (no labels are used to standardise)."""
    scaled = StandardScaler().fit_transform(features)
    return float(silhouette_score(scaled, y)), float(calinski_harabasz_score(scaled, y))


def block_report(features_by_block: np.ndarray, y: np.ndarray, *, seed: int = 0, out_dir: str | Path | None = None,
                 n_neighbors: int = 10, n_folds: int = 5, tsne_all_blocks: bool = True,
                 class_names: tuple[str, str] = ("class 0", "class 1")) -> dict:
    """Score each block's features (n_blocks, n, d) against binary labels y (n,); blocks count from 1.

    Returns per-block lists ``knn_auc``, ``knn_auc_sd``, ``silhouette``, ``calinski_harabasz``, the
    ``recommended_block`` and the ``rule`` that picked it, the settings and (with out_dir) the files:
    block_tsne.png (recommended block), block_tsne_all.png (every block), block_indices.png, block_report.json.
    ``class_names`` label y = 0 and y = 1 on the figures."""
    features_by_block = np.asarray(features_by_block, dtype=np.float64)
    y = np.asarray(y).astype(int).ravel()
    if features_by_block.ndim != 3 or features_by_block.shape[1] != len(y):
        raise ValueError(f"features_by_block must be (n_blocks, n, d) with n = len(y) = {len(y)}, "
                         f"got {features_by_block.shape}")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError("y must hold both classes 0 and 1")
    n_folds = min(n_folds, int(np.bincount(y).min()))
    n_neighbors = min(n_neighbors, len(y) - -(-len(y) // n_folds))  # at most the smallest training fold
    rows = []
    for features in features_by_block:
        auc, auc_sd = knn_auc(features, y, n_neighbors=n_neighbors, n_folds=n_folds, seed=seed)
        rows.append((auc, auc_sd, *cluster_indices(features, y)))
    auc, auc_sd, silhouette, calinski = (list(column) for column in zip(*rows))
    best = int(np.argmax(auc)) + 1  # argmax takes the first of equal maxima: the earliest block
    report = {
        "blocks": list(range(1, len(auc) + 1)), "knn_auc": auc, "knn_auc_sd": auc_sd,
        "silhouette": silhouette, "calinski_harabasz": calinski,
        "recommended_block": best, "rule": SELECTION_RULE, "class_names": list(class_names),
        "settings": {"n": len(y), "n_class1": int(y.sum()), "n_neighbors": n_neighbors, "n_folds": n_folds,
                     "seed": seed, "standardised": True},
    }
    if out_dir is not None:
        report["files"] = write_report_files(Path(out_dir), features_by_block, y, report, seed=seed,
                                             tsne_all_blocks=tsne_all_blocks)
    return report


def embed_2d(features: np.ndarray, seed: int) -> np.ndarray:
    """t-SNE map of standardised features; the perplexity shrinks for small sets as t-SNE requires."""
    perplexity = float(min(30.0, (len(features) - 1) / 3.0))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(StandardScaler().fit_transform(features))


def scatter_classes(ax, points: np.ndarray, y: np.ndarray, names: list[str], title: str, *, size: float) -> None:
    for value, (name, colour) in enumerate(zip(names, CLASS_COLOURS)):
        chosen = y == value
        ax.scatter(points[chosen, 0], points[chosen, 1], s=size, c=colour, alpha=0.75, linewidths=0.3,
                   edgecolors="white", label=f"{name} (n = {int(chosen.sum())})")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def block_title(report: dict, block: int) -> str:
    i = block - 1
    return f"block {block}: KNN AUC {report['knn_auc'][i]:.3f}, silhouette {report['silhouette'][i]:.2f}"


def tsne_figure(path: Path, points: np.ndarray, y: np.ndarray, report: dict) -> Path:
    """t-SNE of the recommended block, the two classes coloured."""
    block = report["recommended_block"]
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    scatter_classes(ax, points, y, report["class_names"], f"t-SNE, recommended {block_title(report, block)}", size=24)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    return save_figure(fig, path)


def tsne_grid_figure(path: Path, maps: list[np.ndarray], y: np.ndarray, report: dict) -> Path:
    """t-SNE of every block in a grid, the recommended one framed."""
    columns = min(4, len(maps))
    rows = -(-len(maps) // columns)
    height = 3.1 * rows + 0.8  # room for the title above and the legend below
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, height), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(maps):
            ax.axis("off")
            continue
        block = i + 1
        scatter_classes(ax, maps[i], y, report["class_names"], f"block {block}\nKNN AUC {report['knn_auc'][i]:.3f}", size=13)
        if block == report["recommended_block"]:
            for spine in ax.spines.values():
                spine.set(color="#d62728", linewidth=2.5)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, frameon=False, markerscale=1.8)
    fig.suptitle(f"t-SNE per block (recommended block {report['recommended_block']} framed)", fontsize=11)
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1 - 0.4 / height))
    return save_figure(fig, path, layout=False)


def indices_figure(path: Path, report: dict) -> Path:
    """The three indices over the blocks, one panel each (their scales differ), the chosen block marked."""
    blocks = report["blocks"]
    panels = [("knn_auc", "KNN AUC (CV)", "#1b9e77"), ("silhouette", "Silhouette", "#7570b3"),
              ("calinski_harabasz", "Calinski–Harabasz", "#d95f02")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.4, 6.6), sharex=True)
    for ax, (key, name, colour) in zip(axes, panels):
        values = np.asarray(report[key])
        ax.plot(blocks, values, marker="o", color=colour, lw=1.8)
        if key == "knn_auc":
            sd = np.asarray(report["knn_auc_sd"])
            ax.fill_between(blocks, values - sd, values + sd, color=colour, alpha=0.15, lw=0, label="± SD over folds")
            ax.legend(fontsize=8, loc="best")
        ax.axvline(report["recommended_block"], color="#d62728", ls="--", lw=1)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"Recommended block {report['recommended_block']}\n({report['rule']})", fontsize=10)
    axes[-1].set_xlabel("Transformer block")
    axes[-1].set_xticks(blocks)
    return save_figure(fig, path)


def save_figure(fig, path: Path, *, layout: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def write_report_files(out_dir: Path, features_by_block: np.ndarray, y: np.ndarray, report: dict, *, seed: int,
                       tsne_all_blocks: bool) -> dict:
    """The PNGs and block_report.json under out_dir; returns {what: path}."""
    files: dict[str, str] = {}
    best = report["recommended_block"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # sklearn's TSNE parameter-rename notices
        maps = ([embed_2d(f, seed) for f in features_by_block] if tsne_all_blocks
                else [embed_2d(features_by_block[best - 1], seed)])
    files["tsne"] = str(tsne_figure(out_dir / "block_tsne.png", maps[best - 1 if tsne_all_blocks else 0], y, report))
    if tsne_all_blocks:
        files["tsne_all_blocks"] = str(tsne_grid_figure(out_dir / "block_tsne_all.png", maps, y, report))
    files["indices"] = str(indices_figure(out_dir / "block_indices.png", report))
    files["json"] = str(out_dir / "block_report.json")
    Path(files["json"]).write_text(json.dumps({**report, "files": files}, indent=2, default=json_default) + "\n",
                                   encoding="utf-8")
    return files
