"""How far pyradiomics and mirp agree, feature by feature, on real tumours, with the bundled settings.

Tumours: IRCADb-17 (its expert masks), LiTS-117 (its expert masks) and HCC_009 in both phases (no mask: an
ellipse drawn by eye inside its large mass).
Each tumour's three largest slices go through `extract_radiomics` once per engine. Per feature: the
relative difference |mirp - pyradiomics| / max(|mirp|, |pyradiomics|) on each tumour, its maximum, and the
absolute-agreement ICC(A,1) over the tumours. A feature agrees when its largest relative difference is
within TOLERANCE. Writes the package's agreement record (`--record`, which engines.py reads: a model made
with one engine takes the other's values only for features that agree) and prints the README's table.

    python Testing/benchmarks/radiomics_agreement.py [--data ../shared/data] [--json OUT] [--record PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

TOLERANCE = 0.02
# HCC_009 has no mask, and a region grown from one click leaks into the liver (the mass is heterogeneous and
# nearly isodense on the arterial phase): an ellipse drawn by eye inside the large mass, (column, row) centre
# and half-axes in voxels, on slices 33-37 (the mass spans columns 150-320, rows 90-250 there).
HCC009_ELLIPSE = {"centre": (235, 170), "half_axes": (60, 50), "slices": range(33, 38)}


def tumours(data: Path):
    """(name, {phase: image}, label map with tumour 2) for each real tumour."""
    from DELICAITELib.io import load_case, read_image, read_label
    from DELICAITELib.segmentation.datasets import read_lits117

    image = read_image(data / "ircadb-17" / "PATIENT_DICOM")
    yield "IRCADb-17", {"CT": image}, read_label(data / "ircadb-17", reference=image)
    image, label = read_lits117(data / "lits-117")
    yield "LiTS-117", {"CT": image}, label
    folder = data / "hcc-tace-seg" / "HCC_009"
    case = load_case(folder / "series-4-recon2-liver-3-phase", folder / "series-103-liver-3-phase")
    label = _ellipse_label(case.ap, **HCC009_ELLIPSE)
    yield "HCC_009 AP", {"AP": case.ap}, label
    yield "HCC_009 VP", {"VP": case.vp}, label


def _ellipse_label(image: sitk.Image, centre, half_axes, slices) -> sitk.Image:
    shape = sitk.GetArrayViewFromImage(image).shape
    rows, columns = np.mgrid[:shape[1], :shape[2]]
    inside = ((columns - centre[0]) / half_axes[0]) ** 2 + ((rows - centre[1]) / half_axes[1]) ** 2 <= 1
    array = np.zeros(shape, np.uint8)
    array[list(slices)] = np.where(inside, 2, 0)
    label = sitk.GetImageFromArray(array)
    label.CopyInformation(image)
    return label


def icc_absolute(values: np.ndarray) -> float:
    """ICC(A,1), two-way, absolute agreement, single rater (McGraw and Wong): rows tumours, columns engines."""
    n, k = values.shape
    grand = values.mean()
    rows = k * ((values.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    columns = n * ((values.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    error = ((values - values.mean(axis=1, keepdims=True) - values.mean(axis=0, keepdims=True) + grand) ** 2).sum() \
        / ((n - 1) * (k - 1))
    denominator = rows + (k - 1) * error + k * (columns - error) / n
    return float((rows - error) / denominator) if denominator > 0 else float("nan")


def measure(data: Path) -> dict:
    from DELICAITELib.features.engines import installed
    from DELICAITELib.features.radiomics import DEFAULT_PARAMS, extract_radiomics
    from DELICAITELib.features.spec import FeatureSpec
    from DELICAITELib.slices import largest_tumour_slices

    per_tumour = {}
    for name, images, label in tumours(data):
        indices = [s.index for s in largest_tumour_slices(label)]
        values = {engine: extract_radiomics(images, label, indices, engine=engine) for engine in ("pyradiomics", "mirp")}
        phase = next(iter(images))
        per_tumour[name] = {engine: {k[len(phase) + 1:]: v for k, v in found.items()}
                            for engine, found in values.items()}
        print(f"{name}: slices {indices}, {len(values['mirp'])} features from both engines", flush=True)
    features = {}
    for feature in sorted(next(iter(per_tumour.values()))["mirp"]):
        pairs = np.array([[t["pyradiomics"][feature], t["mirp"][feature]] for t in per_tumour.values()])
        relative = np.abs(pairs[:, 1] - pairs[:, 0]) / np.maximum(np.abs(pairs).max(axis=1), 1e-12)
        features[feature] = {"relative_difference": {t: round(float(r), 5) for t, r in zip(per_tumour, relative)},
                             "max_relative_difference": round(float(relative.max()), 5),
                             "icc_a1": round(icc_absolute(pairs), 5), "agrees": bool(relative.max() <= TOLERANCE)}
    return {"what": "pyradiomics vs mirp on the same resampled slices and masks, bundled radiomics settings",
            "date": datetime.date.today().isoformat(),
            "engines": [installed("pyradiomics"), installed("mirp")],
            "settings_sha256": FeatureSpec.from_options(DEFAULT_PARAMS).radiomics_sha256(),
            "tolerance": TOLERANCE, "tumours": list(per_tumour), "features": features,
            "values": per_tumour}


def markdown(result: dict) -> str:
    tumours_ = result["tumours"]
    lines = ["| feature | " + " | ".join(tumours_) + " | ICC(A,1) | agrees |",
             "|---|" + "---:|" * len(tumours_) + "---:|---|"]
    for name, entry in result["features"].items():
        cells = " | ".join(f"{100 * entry['relative_difference'][t]:.2f} %" for t in tumours_)
        lines.append(f"| {name.removeprefix('original_')} | {cells} | {entry['icc_a1']:.4f} | "
                     f"{'yes' if entry['agrees'] else '**no**'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
    parser.add_argument("--json", type=Path, help="write everything (values included) here")
    parser.add_argument("--record", type=Path, help="write the package's agreement record here "
                        "(DELICAITE/DELICAITELib/features/radiomics_agreement.json)")
    args = parser.parse_args()
    result = measure(args.data)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.record:
        record = {k: v for k, v in result.items() if k != "values"}
        args.record.write_text(json.dumps(record, indent=1) + "\n")
    agree = sum(e["agrees"] for e in result["features"].values())
    print(f"{agree} of {len(result['features'])} features agree within {TOLERANCE:.0%} on every tumour")
    print(markdown(result))


if __name__ == "__main__":
    main()
