"""Which radiomics engine computes a feature spec's radiomics, and whether a model takes another's values.

Two engines compute the same settings under the same names: pyradiomics (the study's; in Slicer it comes
with the SlicerRadiomics extension, elsewhere pip builds it) and mirp (radiomics_mirp.py; wheels only).
A spec records the engine that made its training features, as "NAME VERSION". A case runs on that engine
when it is installed. When only the other one is, the case goes on only if ``radiomics_agreement.json``
(measured on real tumours by Testing/benchmarks/radiomics_agreement.py) says the two agree on every
feature the settings produce; otherwise it stops and says what to install.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..errors import DelicaiteError

ENGINES = ("pyradiomics", "mirp")
DISTRIBUTIONS = {"pyradiomics": ("pyradiomics-bhklab", "pyradiomics"), "mirp": ("mirp",)}
AGREEMENT_FILE = Path(__file__).with_name("radiomics_agreement.json")


def family(description: str | None) -> str | None:
    """"mirp 2.5.0" -> "mirp"; "pyradiomics-bhklab 3.1.4" -> "pyradiomics"."""
    if description is None:
        return None
    return "mirp" if description.split()[0] == "mirp" else "pyradiomics"


def installed(engine: str) -> str | None:
    """"NAME VERSION" of the engine's installed distribution (package metadata: importing takes seconds)."""
    for distribution in DISTRIBUTIONS[engine]:
        try:
            return f"{distribution} {version(distribution)}"
        except PackageNotFoundError:
            continue
    return None


def choose(wanted: str = "auto") -> str:
    """The engine a new spec uses: ``wanted`` when installed; "auto" takes pyradiomics, else mirp."""
    if wanted not in ("auto", *ENGINES):
        raise DelicaiteError(f"unknown radiomics engine {wanted!r}: choose auto, pyradiomics or mirp")
    for engine in (ENGINES if wanted == "auto" else (wanted,)):
        if (description := installed(engine)) is not None:
            return description
    raise DelicaiteError(f"no radiomics engine is installed ({wanted}): pip install mirp==2.5.0 (wheels on every "
                         "platform), or pyradiomics; in Slicer, press Install dependencies or add SlicerRadiomics")


def agreement_record(path: Path = AGREEMENT_FILE) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def disagreeing_features(feature_names, settings_sha256: str, record: dict | None = None) -> list[str]:
    """The features (pyradiomics names, no phase prefix) the record does not show to agree between the
    engines for these settings: all of them when the record was measured with other settings."""
    record = agreement_record() if record is None else record
    if record.get("settings_sha256") != settings_sha256:
        return sorted(feature_names)
    agree = {name for name, entry in record.get("features", {}).items() if entry.get("agrees")}
    return sorted(name for name in feature_names if name not in agree)


def engine_for_spec(trained_with: str | None, feature_names, settings_sha256: str) -> str:
    """The engine a case uses for a spec trained with ``trained_with``: that engine when it is installed,
    else the other one when every feature agrees between them; DelicaiteError otherwise."""
    wanted = family(trained_with) or "pyradiomics"
    if (here := installed(wanted)) is not None:
        return here
    other = next(e for e in ENGINES if e != wanted)
    if (alternative := installed(other)) is None:
        raise DelicaiteError(f"the model's radiomics were computed with {trained_with or wanted}, and no radiomics "
                             f"engine is installed: install {wanted}")
    differ = disagreeing_features(feature_names, settings_sha256)
    if differ:
        shown = ", ".join(differ[:4]) + (f" and {len(differ) - 4} more" if len(differ) > 4 else "")
        raise DelicaiteError(
            f"the model's radiomics were computed with {trained_with or wanted}, which is not installed; "
            f"{alternative} is, but the two engines are not shown to agree on {shown} "
            "(README, 'Radiomics engines'): install "
            + ("SlicerRadiomics (or pyradiomics)" if wanted == "pyradiomics" else "mirp==2.5.0")
            + f", or train the model on {other}'s features (delicaite cohort features --radiomics-engine {other})")
    return alternative
