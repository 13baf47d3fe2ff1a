"""Splits by centre, as in the study: the largest centre trains (minus an internal test share), the
other centres are the external test; a validation share of the training set decides model choice.

Shares are stratified by therapy × PD because the PD rate depends strongly on therapy (disease control
TACE 27 % vs HAIC 80 % in the study), so a random split could leave one set with a skewed mix.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..errors import DelicaiteError

TRAINING, INTERNAL_TEST, EXTERNAL_TEST = "training", "internal_test", "external_test"
SETS = (TRAINING, INTERNAL_TEST, EXTERNAL_TEST)


def training_centre(centres) -> str:
    """The centre with the most patients (ties: the first name in sorted order)."""
    counts = pd.Series(np.asarray(centres, dtype=str)).value_counts()
    if counts.empty:
        raise DelicaiteError("the cohort has no patients")
    top = counts[counts == counts.max()].index
    return sorted(top)[0]


def _strata(therapy, pd_values) -> tuple[np.ndarray | None, str]:
    """therapy × PD labels, or a coarser stratification when a stratum is too small to split."""
    therapy = np.asarray(therapy, dtype=str)
    outcome = np.asarray(pd_values, dtype=float).astype(int).astype(str)
    for labels, rule in ((np.char.add(np.char.add(therapy, "|"), outcome), "therapy x PD"),
                         (outcome, "PD"), (therapy, "therapy")):
        if pd.Series(labels).value_counts().min() >= 2:
            return labels, rule
    return None, "none (a stratum has fewer than 2 patients)"


def stratified_share(therapy, pd_values, share: float, seed: int) -> tuple[np.ndarray, str]:
    """Boolean mask of a `share` of the rows, stratified by therapy × PD; (mask, stratification used)."""
    n = len(therapy)
    if not 0.0 < share < 1.0:
        raise DelicaiteError(f"a split share must lie strictly between 0 and 1, got {share}")
    n_take = int(round(share * n))
    if n_take < 1 or n - n_take < 1:
        raise DelicaiteError(f"cannot take a {share:.0%} share of {n} patients; the set is too small")
    strata, rule = _strata(therapy, pd_values)
    try:
        _, taken = train_test_split(np.arange(n), test_size=n_take, random_state=seed, stratify=strata)
    except ValueError:  # more strata than rows to take: stratification is impossible at this size
        _, taken = train_test_split(np.arange(n), test_size=n_take, random_state=seed)
        rule = "none (too few patients per stratum)"
    mask = np.zeros(n, dtype=bool)
    mask[taken] = True
    return mask, rule


def centre_split(frame: pd.DataFrame, internal_share: float = 0.25, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """(splits, rule): splits has patient_id, centre, set, pd_known, one row per patient of `frame`.

    Patients with unknown PD cannot be trained on; in the training centre they go to the internal test
    (their survival still counts there), elsewhere to the external test.
    """
    centre = frame["centre"].astype(str).to_numpy()
    known = frame["pd"].notna().to_numpy()
    home = training_centre(centre)
    at_home = centre == home
    labelled = np.flatnonzero(at_home & known)
    internal, rule = stratified_share(frame["therapy"].to_numpy()[labelled], frame["pd"].to_numpy()[labelled],
                                      internal_share, seed)
    sets = np.where(at_home, INTERNAL_TEST, EXTERNAL_TEST).astype(object)
    sets[labelled[~internal]] = TRAINING
    splits = pd.DataFrame({"patient_id": frame["patient_id"].to_numpy(), "centre": centre, "set": sets,
                           "pd_known": known.astype(int)})
    info = {
        "rule": f"training centre = the largest ({home}); {internal_share:.0%} of its patients with known PD "
                f"form the internal test (stratified by {rule}); the other centres are the external test",
        "training_centre": home,
        "external_centres": sorted(set(centre[~at_home])),
        "internal_share": internal_share,
        "stratified_by": rule,
        "seed": seed,
        "n": {s: int((sets == s).sum()) for s in SETS},
        "n_unknown_pd_left_out_of_training": int((at_home & ~known).sum()),
        "n_unknown_pd": int((~known).sum()),
    }
    return splits, info


# ------------------------------------------------------------------------------- the recorded split
SPLIT_FILE, SPLIT_RECORD = "split.csv", "split.json"


def recorded_split(frame: pd.DataFrame, folder, internal_share: float = 0.25, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """The cohort's one split, kept in ``folder`` (the features folder every training command reads).

    The first command that trains on the cohort (deep pretraining, the CNNs, `cohort train`) makes it and
    writes ``split.csv`` and ``split.json``; every later one reads it back, so internal and external test
    patients stay out of every model. A later command asking for another seed or share, or a cohort
    whose patients or centres changed, is refused: training on another split would put test patients
    into some model's training."""
    from ..storage import write_csv_atomically, write_json_atomically

    folder = Path(folder)
    record_path, table_path = folder / SPLIT_RECORD, folder / SPLIT_FILE
    if not record_path.is_file():
        splits, info = centre_split(frame, internal_share, seed)
        folder.mkdir(parents=True, exist_ok=True)
        write_csv_atomically(splits, table_path)
        write_json_atomically(record_path, {**info, "made_for": "every command that trains on this cohort"}, indent=1)
        return splits, info
    info = json.loads(record_path.read_text(encoding="utf-8"))
    splits = pd.read_csv(table_path, dtype={"patient_id": str, "centre": str})
    asked = {"seed": seed, "internal_share": internal_share}
    differs = {k: (info.get(k), v) for k, v in asked.items() if info.get(k) != v}
    if differs:
        shown = ", ".join(f"{k} {was} (asked {now})" for k, (was, now) in differs.items())
        raise DelicaiteError(f"{record_path} holds the cohort's split, made with {shown}: train with the same "
                             f"--seed, or start again without the folder's split (models trained on it would then "
                             "have seen test patients)")
    current = frame[["patient_id", "centre"]].astype(str).reset_index(drop=True)
    if not current.equals(splits[["patient_id", "centre"]].astype(str).reset_index(drop=True)) or \
            not np.array_equal(frame["pd"].notna().to_numpy(int), splits["pd_known"].to_numpy(int)):
        raise DelicaiteError(f"the cohort's patients, centres or known outcomes differ from those of the split in "
                             f"{record_path}; it belongs to another version of the cohort")
    return splits, info
