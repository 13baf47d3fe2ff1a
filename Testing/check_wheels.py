"""Can every module's requirements install into Slicer 5.10 (CPython 3.12) from wheels alone?

Slicer has no compiler and no Python headers, so a package that is published only as source cannot be
installed there. For each requirement file under the module folders (``*/Resources/Requirements/*.txt``)
and each platform Slicer 5.10 is built for, this resolves the file for CPython 3.12 with
``--only-binary :all:`` and Slicer's own packages as constraints (``Slicer-5.10-constraints.txt``), and
prints one verdict per platform. Windows, macOS arm64 and Linux must pass; macOS x86_64 is reported only
(PyTorch publishes no wheels for it any more).

The resolver is uv's (``uv pip compile --python-platform``), a test dependency: pip's ``--platform`` changes
the wheel tags but still evaluates environment markers for the machine it runs on, so on Linux it asks a
Windows resolution for torch's Linux-only CUDA packages and fails for the wrong reason.

    python Testing/check_wheels.py [--json OUT]

Exit status: 0 when the three required platforms pass, or when the package registry cannot be reached
(said on the first line: nothing was checked); 1 when a required platform fails; 2 without uv.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "DELICAITE" / "Resources" / "Requirements" / "Slicer-5.10-constraints.txt"
PYTHON_VERSION = "3.12"
# (label, uv's --python-platform, required); uv's defaults are the oldest systems each build supports
# (macOS 12 on arm64, manylinux_2_28, which Slicer's Linux build also needs).
PLATFORMS = (
    ("win_amd64", "x86_64-pc-windows-msvc", True),
    ("macos_arm64", "aarch64-apple-darwin", True),
    ("manylinux_x86_64", "x86_64-manylinux_2_28", True),
    ("macos_x86_64", "x86_64-apple-darwin", False),
)
NETWORK_WORDS = ("failed to fetch", "network", "dns", "connect", "timed out", "offline")


def requirement_files() -> list[Path]:
    return sorted(path for path in ROOT.glob("*/Resources/Requirements/*.txt") if path != CONSTRAINTS)


def uv_command() -> str | None:
    """uv beside this Python (the test extra installs it), else on PATH."""
    beside = Path(sys.executable).with_name("uv.exe" if sys.platform == "win32" else "uv")
    return str(beside) if beside.is_file() else shutil.which("uv")


def _compile(uv: str, requirements: Path, platform: str, output: Path) -> subprocess.CompletedProcess:
    return subprocess.run([uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate",
                           "--python-version", PYTHON_VERSION, "--python-platform", platform,
                           "--only-binary", ":all:", "-c", str(CONSTRAINTS), str(requirements), "-o", str(output)],
                          capture_output=True, text=True)


def registry_reachable(uv: str) -> bool:
    """A one-line resolution for Windows succeeds, or fails for another reason than the network."""
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe.txt"
        probe.write_text("numpy==2.0.2\n")
        done = _compile(uv, probe, PLATFORMS[0][1], Path(folder) / "out.txt")
    return done.returncode == 0 or not any(word in done.stderr.lower() for word in NETWORK_WORDS)


def resolve(uv: str, requirements: Path, platform: str) -> dict:
    """One requirement file resolved for one platform: the pinned set, or why there is none."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "resolved.txt"
        done = _compile(uv, requirements, platform, output)
        if done.returncode != 0:
            reason = " ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
            return {"ok": False, "reason": reason[:400]}
        pins = [line.split("==") for line in output.read_text().splitlines() if "==" in line]
    versions = {name.strip().lower(): version.split(";")[0].strip() for name, version in pins}
    return {"ok": True, "packages": len(versions), "versions": dict(sorted(versions.items()))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write every resolution here")
    args = parser.parse_args(argv)
    uv = uv_command()
    if uv is None:
        print("wheel check: uv is not installed (pip install -e '.[test]' brings it)")
        return 2
    if not registry_reachable(uv):
        print("wheel check: the package registry cannot be reached from here; nothing was checked")
        return 0
    results, failed = {}, False
    for label, platform, required in PLATFORMS:
        verdicts = {path.relative_to(ROOT).as_posix(): resolve(uv, path, platform) for path in requirement_files()}
        results[label] = verdicts
        ok = all(v["ok"] for v in verdicts.values())
        failed |= required and not ok
        status = "PASS" if ok else ("FAIL" if required else "fails (reported, not required)")
        print(f"{label:18s} CPython {PYTHON_VERSION}, wheels only: {status}")
        for name, verdict in verdicts.items():
            detail = (f"{verdict['packages']} packages, torch {verdict['versions'].get('torch', '-')}"
                      if verdict["ok"] else verdict["reason"])
            print(f"    {name}: {detail}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
