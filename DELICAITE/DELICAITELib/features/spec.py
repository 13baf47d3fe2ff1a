"""Which image features a case gets, as one object: the feature spec.

A spec names the radiomics settings (pyradiomics parameters and our settings version) and, for deep
features, the ViT encoder (and its block) and the CNN folder. `delicaite cohort features` extracts a
cohort with a spec and writes it beside the table (``feature_spec.json``); `cohort train` copies it into
the model bundle; every door then computes a new case's features from the bundle's spec, so a model
always sees the features it was trained on. Its fingerprint (settings hash, encoder and CNN checksums)
marks what a case file was made with.
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DelicaiteError
from ..io import Case
from ..slices import SliceArea
from . import engines
from .radiomics import delicaite_options, extract_radiomics, load_radiomics_settings, radiomics_feature_names

SPEC_FILE = "feature_spec.json"
SPEC_FORMAT, SPEC_FORMAT_VERSION = "delicaite-feature-spec", 1
DEEP_BLOCK = 4  # the paper's choice among the 12 blocks of its ViT (features/deep/encoder.py)


@dataclass
class CaseFeatures:
    """One case's feature values (named floats) and, when the spec or the caller needed them, the
    preprocessed crops of its slices ({"AP": (3, 224, 224), "VP": ...})."""

    values: dict[str, float]
    crops: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class FeatureSpec:
    """``radiomics``: pyradiomics settings as the YAML gives them (our ``delicaite`` block included), or
    None for no radiomics, and ``radiomics_engine`` the engine ("pyradiomics-bhklab 3.1.4", "mirp 2.5.0") that
    computed the training features (engines.py);
    ``deep_encoder``: an encoder folder or an official DINOv2 .pth (block ``deep_block``); ``deep_cnn``:
    a folder of `delicaite deep train-cnn`."""

    radiomics: Mapping | None = None
    deep_encoder: str | None = None
    deep_block: int = DEEP_BLOCK
    deep_cnn: str | None = None
    radiomics_engine: str | None = None

    # ------------------------------------------------------------------------------------ making one
    @classmethod
    def from_options(cls, radiomics_params=None, deep_encoder=None, deep_cnn=None, *,
                     radiomics: bool = True, radiomics_engine: str = "auto") -> FeatureSpec:
        """The spec of the command-line options (``radiomics_params``: a YAML path, a dict or None for
        the bundled settings; ``radiomics_engine``: auto, pyradiomics, mirp, or an engine's description to
        record as it is); encoder and CNN paths are kept absolute."""
        settings = None
        if radiomics:
            settings, version = load_radiomics_settings(radiomics_params)
            settings = {**settings, "delicaite": {**delicaite_options(radiomics_params), "settings_version": version}}
        absolute = lambda p: None if p is None else str(Path(p).resolve())  # noqa: E731
        engine = None
        if radiomics:
            engine = (engines.choose(radiomics_engine) if radiomics_engine in ("auto", *engines.ENGINES)
                      else radiomics_engine)
        return cls(settings, absolute(deep_encoder), DEEP_BLOCK, absolute(deep_cnn), engine)

    @classmethod
    def clinical_only(cls) -> FeatureSpec:
        return cls(None, None, DEEP_BLOCK, None)

    # ----------------------------------------------------------------------------------- properties
    @property
    def has_images(self) -> bool:
        return self.radiomics is not None or self.has_deep

    @property
    def has_deep(self) -> bool:
        return self.deep_encoder is not None or self.deep_cnn is not None

    @property
    def radiomics_version(self) -> int | None:
        return None if self.radiomics is None else load_radiomics_settings(self.radiomics)[1]

    def radiomics_sha256(self) -> str | None:
        if self.radiomics is None:
            return None
        settings, _ = load_radiomics_settings(self.radiomics)
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()

    def fingerprint(self) -> dict:
        """What a case file made with this spec records, and what a rerun compares to resume it."""
        return {"radiomics_settings_version": self.radiomics_version,
                "radiomics_settings_sha256": self.radiomics_sha256(),
                "deep_encoder_sha256": None if self.deep_encoder is None else encoder_checksum(self.deep_encoder),
                "deep_cnn_sha256": None if self.deep_cnn is None else cnn_folder_checksum(self.deep_cnn)}

    def engine_here(self) -> str:
        """The radiomics engine this machine computes the spec with (engines.engine_for_spec)."""
        return engines.engine_for_spec(self.radiomics_engine, radiomics_feature_names(self.radiomics),
                                       self.radiomics_sha256())

    def describe(self) -> str:
        parts = ["clinical covariates"]
        if self.radiomics is not None:
            parts.append(f"radiomics (settings version {self.radiomics_version})")
        if self.deep_encoder is not None:
            parts.append(f"ViT block {self.deep_block}")
        if self.deep_cnn is not None:
            parts.append("CNN per phase")
        return " + ".join(parts)

    # -------------------------------------------------------------------------------------- compute
    def check(self, device: str = "cpu") -> None:
        """Load (and checksum) the encoder and CNNs once, so a bad file fails before any case runs."""
        self.fingerprint()  # a missing file is named here, in the words of the feature spec
        if self.radiomics is not None:
            self.engine_here()  # an engine that is missing, or that disagrees, is named before any case
        if self.deep_encoder is not None:
            _encoder(self.deep_encoder, _torch_device(device))
        if self.deep_cnn is not None:
            _cnns(self.deep_cnn)

    def compute(self, case: Case, slices: Sequence[SliceArea], *, device: str = "cpu",
                keep_crops: bool = False) -> CaseFeatures:
        """The features of one loaded case (label map on the AP grid) on its picked slices."""
        values: dict[str, float] = {}
        if not self.has_images and not keep_crops:
            return CaseFeatures(values)
        if not slices:
            raise DelicaiteError("no tumour slices: the image features need the three largest tumour slices")
        indices = [s.index for s in slices]
        if self.radiomics is not None:
            engine = self.engine_here()
            if _engine_changed(self.radiomics_engine, engine):
                warnings.warn(f"the model's radiomics were computed with {self.radiomics_engine} and this is "
                              f"{engine}: feature values may differ slightly", stacklevel=2)
            values.update(extract_radiomics({"AP": case.ap, "VP": case.vp}, case.label, indices, params=self.radiomics,
                                            engine=engines.family(engine)))
        crops = None
        if self.has_deep or keep_crops:
            from ..preprocessing import preprocess_case

            crops = preprocess_case(case, slices)
        if self.deep_encoder is not None:
            values.update(_encoder(self.deep_encoder, _torch_device(device)).case_features(crops, self.deep_block))
        if self.deep_cnn is not None:
            from .deep.cnn import case_cnn_features

            values.update(case_cnn_features(crops, *_cnns(self.deep_cnn)))
        return CaseFeatures(values, crops if keep_crops else None)

    # ------------------------------------------------------------------------------------ to and from JSON
    def to_json(self, base_dir=None) -> dict:
        """A JSON object; encoder and CNN paths relative to ``base_dir`` when they lie inside it."""
        def where(path):
            if path is None:
                return None
            path = Path(path)
            if base_dir is not None and path.resolve().is_relative_to(Path(base_dir).resolve()):
                return path.resolve().relative_to(Path(base_dir).resolve()).as_posix()
            return str(path)

        return {"format": SPEC_FORMAT, "format_version": SPEC_FORMAT_VERSION, "radiomics": self.radiomics,
                "radiomics_engine": self.radiomics_engine, "deep_encoder": where(self.deep_encoder), "deep_block": int(self.deep_block),
                "deep_cnn": where(self.deep_cnn), "fingerprint": self.fingerprint(), "describes": self.describe()}

    @classmethod
    def from_json(cls, record: Mapping, base_dir=None, *, verify: bool = True) -> FeatureSpec:
        """The spec of ``to_json``; relative paths start at ``base_dir``. With ``verify`` the encoder and
        CNN must still have the checksums the record holds (a swapped file means other features)."""
        if not isinstance(record, Mapping) or record.get("format") != SPEC_FORMAT:
            raise DelicaiteError(f"not a DELICAITE feature spec (format {SPEC_FORMAT!r} expected)")
        if record.get("format_version") != SPEC_FORMAT_VERSION:
            raise DelicaiteError(f"feature spec version {record.get('format_version')!r}; this library reads "
                                 f"{SPEC_FORMAT_VERSION}")

        def path(value):
            if value is None:
                return None
            p = Path(value)
            return str(p if p.is_absolute() or base_dir is None else Path(base_dir) / p)

        spec = cls(record.get("radiomics"), path(record.get("deep_encoder")), int(record.get("deep_block", DEEP_BLOCK)),
                   path(record.get("deep_cnn")), record.get("radiomics_engine"))
        if verify:
            expected = record.get("fingerprint") or {}
            got = spec.fingerprint()
            changed = [k for k, v in expected.items() if k in got and got[k] != v]
            if changed:
                raise DelicaiteError(f"the feature spec's files changed since it was written ({', '.join(changed)}): "
                                     "these are not the encoder, CNN or settings the features were made with")
        return spec

    def save(self, path, base_dir=None) -> Path:
        from ..storage import write_json_atomically

        return write_json_atomically(path, self.to_json(base_dir), indent=1)

    @classmethod
    def load(cls, path, *, verify: bool = True) -> FeatureSpec:
        from ..jsonable import read_json

        return cls.from_json(read_json(path, "feature spec"), Path(path).parent, verify=verify)


# ---------------------------------------------------------------------------------- checksums and loading
def _engine_changed(recorded: str | None, here: str) -> bool:
    """Another engine, or another release of it ("pyradiomics (assumed...)", which older models record,
    names no release)."""
    if recorded is None:
        return False
    release = recorded.split()[1] if len(recorded.split()) > 1 else ""
    return engines.family(recorded) != engines.family(here) or (release[:1].isdigit() and release != here.split()[-1])


def encoder_checksum(path) -> str:
    """A DELICAITE encoder folder's metadata_sha256 (which covers its weights' sum), or the sha256 of
    an official checkpoint file."""
    from ..storage import artifact_checksum

    path = Path(path)
    if path.is_dir() or path.suffix == ".json":
        if not path.exists():
            raise DelicaiteError(f"deep encoder not found: {path}")
        return artifact_checksum(path)
    if not path.is_file():
        raise DelicaiteError(f"deep encoder not found: {path} (give an encoder folder or an official DINOv2 .pth file)")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cnn_folder_checksum(path) -> str:
    """One sum over the metadata_sha256 of a CNN folder's AP and VP networks and its stacking."""
    from ..storage import artifact_checksum
    from .deep.cnn import CNN_FOLDERS, STACKING_FOLDER

    path = Path(path)
    if not path.is_dir():
        raise DelicaiteError(f"CNN folder not found: {path} (write one with `delicaite deep train-cnn`)")
    parts = [artifact_checksum(path / folder) for folder in (*CNN_FOLDERS.values(), STACKING_FOLDER)]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def _torch_device(device: str) -> str:
    return "cpu" if device == "auto" else device


@functools.lru_cache(maxsize=2)
def _encoder(path: str, device: str):
    """Each process loads (and checks) an encoder once, not once per case."""
    from .deep.encoder import load_encoder

    return load_encoder(path, device=device)


@functools.lru_cache(maxsize=2)
def _cnns(path: str):
    from .deep.cnn import load_phase_cnns

    return load_phase_cnns(path)
