"""The fault matrix: build each faulty input of Testing/faults.py from ../shared/data, run `delicaite` on
it in a child process, and report per fault: exit status, the one ``error:`` line (or TRACEBACK), whether
a previous good result in the output folder changed, and whether the program held (refused with one
line and lost nothing, or ran when it should). Prints a Markdown table, and JSON with --out.

    python Testing/fault_matrix.py [--data ../shared/data] [--only NAME ...] [--work DIR] [--out matrix.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults import FAULTS, SHARED_DATA, Fault, Inputs  # noqa: E402

TIMEOUT_S = 900


def run_cli(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "DELICAITELib.cli", *argv], capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


def snapshot(path: Path | None) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of ``path`` itself), by relative name."""
    if path is None or not path.exists():
        return {}
    if path.is_file():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def run_together(argv: list[str]) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """The same command twice at once (two users, or a double click)."""
    command = [sys.executable, "-m", "DELICAITELib.cli", *argv]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = []
    for process in (first, second):
        out, err = process.communicate(timeout=TIMEOUT_S)
        results.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return results[0], results[1]


def judge(fault: Fault, done: subprocess.CompletedProcess, before: dict, after: dict) -> dict:
    stderr = done.stderr or ""
    lines = [line for line in stderr.splitlines() if line.strip()]
    traceback = "Traceback (most recent call last)" in stderr
    error = next((line for line in reversed(lines) if line.startswith("error:")), None)
    changed = sorted(name for name, digest in before.items() if after.get(name) != digest)
    row = {"fault": fault.name, "what": fault.what, "expect": fault.expect, "exit": done.returncode,
           "error": None if error is None else error[:200], "traceback": traceback,
           "stderr_chars": len(stderr), "previous_changed": changed}
    if fault.expect == "refuse":
        held = done.returncode == 2 and error is not None and not traceback and not changed and len(stderr) < 20_000
        if fault.needs_previous and fault.out is not None and fault.out.is_dir():
            row["failure_recorded"] = (fault.out / "failure.json").exists()
            held = held and row["failure_recorded"]
    else:
        held = done.returncode == 0 and not traceback
        leaked = fault.extra.get("no_paths_in")
        if leaked and Path(leaked).exists():
            text = Path(leaked).read_text(encoding="utf-8", errors="replace")
            row["paths_written"] = str(Path(leaked).parent) in text
            held = held and not row["paths_written"]
    row["held"] = bool(held)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED_DATA))
    parser.add_argument("--only", nargs="*", help="run only these faults")
    parser.add_argument("--work", help="keep the inputs and outputs here (default: a temporary folder)")
    parser.add_argument("--out", help="also write the rows as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="delicaite-faults-") as scratch:
        work = Path(args.work or scratch)
        inputs = Inputs(work / "inputs", Path(args.data))
        good = work / "good"
        if not (good / "result.json").exists():
            done = run_cli(inputs.case(good))
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                raise SystemExit("the base case itself fails: fix that before the matrix")
        rows = []
        for name, build in FAULTS.items():
            if args.only and name not in args.only:
                continue
            folder = work / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            fault = build(inputs, folder)
            if fault.needs_previous and fault.out is not None:
                shutil.copytree(good, fault.out)
            if "before" in fault.extra:  # a good run first, then the fault
                argv, then = fault.extra["before"]
                run_cli(argv)
                then()
            before = snapshot(fault.out)
            if fault.expect == "one_of_two":
                first, second = run_together(fault.argv)
                ok, refused = (first, second) if first.returncode == 0 else (second, first)
                row = judge(Fault(fault.name, fault.what, fault.argv, None), refused, {}, {})
                row.update(expect="one runs, one refused", exit=f"{first.returncode}/{second.returncode}",
                           held=ok.returncode == 0 and row["held"] and "another delicaite run" in (row["error"] or ""))
            else:
                done = run_cli(fault.argv)
                row = judge(fault, done, before, snapshot(fault.out))
            rows.append(row)
            print(f"{'held  ' if row['held'] else 'FAILED'} {name}: exit {row['exit']}, "
                  f"{'TRACEBACK' if row['traceback'] else (row['error'] or '-')}", flush=True)
    print()
    print("| fault | expect | exit | one line or traceback | previous result changed | held |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        said = "TRACEBACK" if row["traceback"] else (row["error"] or "-").replace("|", "/")[:110]
        print(f"| {row['fault']} | {row['expect']} | {row['exit']} | {said} | "
              f"{', '.join(row['previous_changed']) or 'no'} | {'yes' if row['held'] else '**no**'} |")
    held = sum(row["held"] for row in rows)
    print(f"\n{held}/{len(rows)} held")
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "held": held, "total": len(rows)}, indent=2) + "\n",
                                  encoding="utf-8")
    return 0 if held == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
