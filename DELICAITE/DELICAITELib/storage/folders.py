"""Output folders: checked before any work, one writer at a time, and a record when a run fails.

A run that fails leaves the previous result in place; ``failure.json`` beside it says that the last
run failed and why (paths reduced to their file names), and the next good run removes it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
from collections.abc import Iterator
from pathlib import Path, PureWindowsPath

from ..errors import DelicaiteError

LOCK_NAME = ".delicaite.lock"
FAILURE_FILE = "failure.json"
# absolute POSIX or Windows paths inside a message (they often name the patient)
_PATH = re.compile(r"(?<![\w.~\-/\\])(?:[A-Za-z]:\\|/)[^\s:;,()'\"]+")


def check_output_folder(path, option: str = "--out") -> Path:
    """``path`` can be (or become) a writable folder; DelicaiteError that says why not, before any work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DelicaiteError(f"{option} {path} is a file: name a folder for the outputs")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DelicaiteError(f"{option} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DelicaiteError(f"{option} {path}: {ancestor} is not writable; choose a folder you can write to")
    return path


@contextlib.contextmanager
def output_lock(folder) -> Iterator[Path]:
    """Hold ``folder`` (created if need be) for this run; a second run on it is refused, not interleaved."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DelicaiteError(f"another delicaite run is writing into {folder}: wait for it to end, or choose "
                             "another output folder") from None
    try:
        yield folder
    finally:
        lock.release()


def record_failure(folder, command: str, error: BaseException) -> Path | None:
    """Write ``failure.json`` into an existing output ``folder`` (nothing else is touched); None if there is none."""
    from .atomic import write_json_atomically

    folder = Path(folder)
    if not folder.is_dir():
        return None
    message = strip_absolute_paths(str(error))
    record = {"command": command, "failed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "error": message[:2000],
              "note": "the last run into this folder failed; the other files here are from an earlier run"}
    try:
        return write_json_atomically(folder / FAILURE_FILE, record, indent=2)
    except OSError:
        return None  # a full or read-only disk: the error itself still reaches the user


def strip_absolute_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part ("/data/Doe^John/ap" → "ap"): the folders above
    an image often carry a patient's name, and error records travel."""
    return _PATH.sub(lambda match: PureWindowsPath(match.group(0).rstrip(".")).name or "…", text)


def clear_failure(folder) -> None:
    (Path(folder) / FAILURE_FILE).unlink(missing_ok=True)
