"""Run a `delicaite` command in a separate Python process, with typed progress events and cancel.

The Slicer modules use this to keep long work (segmentation, a whole case, a batch) off the GUI
thread, the way SlicerMONAIAuto3DSeg runs its inference: a Logic-owned runner polls
`BackgroundJob.poll()` from a timer and gets ProgressEvents (message, fraction of the job, kind);
`cancel()` ends the process. Plain Python (no Qt), so it is tested here too.

The child runs ``DELICAITELib.cli.main --progress-format json`` with this copy of the library first on
PYTHONPATH, Python output unbuffered, stderr (where the CLI writes its events and ``error: …``) merged
into stdout; each line comes back as an event (progress.ProgressEvent.from_line), so no caller matches
printed text.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

WINDOWS = os.name == "nt"

from .progress import ERROR, LOG, ProgressEvent

# The folder that holds the DELICAITELib package, so the child imports this very copy.
LIBRARY_PARENT = Path(__file__).resolve().parent.parent
CANCELLED = "cancelled"


def _inside_slicer() -> bool:
    slicer = sys.modules.get("slicer")
    return slicer is not None and hasattr(slicer, "app")


def python_executable() -> str:
    """The interpreter for child processes: PythonSlicer inside the Slicer application, else this one.

    Slicer's own executable is the application, not a Python interpreter; PythonSlicer lies beside it
    (and on the PATH Slicer's launcher sets).
    """
    if _inside_slicer():
        beside = Path(sys.executable).with_name("PythonSlicer" + (".exe" if os.name == "nt" else ""))
        if beside.is_file():
            return str(beside)
        found = shutil.which("PythonSlicer")
        if found:
            return found
    return sys.executable


class BackgroundJob:
    """One `delicaite` command in a child process.

    ``args``: the command line after ``delicaite`` (e.g. ``["segment", ct, "--out", label]``).
    ``outputs``: files the command writes; they are deleted when the job is cancelled or fails, so a
    half-written file is never taken for a result.
    """

    def __init__(self, args: Sequence[str], python: str | None = None, env: dict | None = None,
                 outputs: Sequence[str | os.PathLike] = ()):
        self.args = [str(a) for a in args]
        self.python = python or python_executable()
        self.outputs = [Path(p) for p in outputs]
        self._env = env
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._queue: queue.Queue[str] = queue.Queue()
        self._events: list[ProgressEvent] = []
        self._delivered = 0  # how many of _events poll() has returned
        self._cancelled = False

    @property
    def command(self) -> list[str]:
        return [self.python, "-u", "-m", "DELICAITELib.cli", "--progress-format", "json", *self.args]

    def _child_env(self) -> dict:
        env = dict(os.environ if self._env is None else self._env)
        paths = [str(LIBRARY_PARENT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("PYTHONIOENCODING", "utf-8")
        return env

    def start(self) -> BackgroundJob:
        if self._process is not None:
            raise RuntimeError("this job has already been started")
        # Its own process group (POSIX) so cancel also ends anything the command starts (TotalSegmentator).
        # Windows: no console window per job, and a group of its own
        extra = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW} if WINDOWS
                 else {"start_new_session": True})
        self._process = subprocess.Popen(
            self.command, env=self._child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace", bufsize=1, **extra)
        self._reader = threading.Thread(target=self._read, name="delicaite-job-reader", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self._process.stdout:
            self._queue.put(line.rstrip("\r\n"))
        self._process.stdout.close()

    def _collect(self) -> None:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
            if line.startswith("error: ") and self._events and self._events[-1].kind == ERROR:
                continue  # the CLI's plain error line repeats the error event just read
            self._events.append(ProgressEvent.from_line(line))

    def poll(self) -> list[ProgressEvent]:
        """Events not returned by an earlier call (never blocks; `wait` and `output` take none away)."""
        self._collect()
        new = self._events[self._delivered:]
        self._delivered = len(self._events)
        return new

    @property
    def events(self) -> list[ProgressEvent]:
        """Every event so far."""
        self._collect()
        return list(self._events)

    @property
    def output(self) -> list[str]:
        """Every event's message so far, as a log shows them."""
        return [event.message for event in self.events]

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended, else None (negative: ended by a signal)."""
        return None if self._process is None else self._process.poll()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def succeeded(self) -> bool:
        return not self._cancelled and self.returncode == 0

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until the process ends (at most ``timeout`` s); its exit status, or None if still running."""
        if self._process is None:
            raise RuntimeError("the job has not been started")
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._finish()
        return self._process.returncode

    def cancel(self, timeout: float = 5.0) -> None:
        """Stop the process (terminate, then kill after ``timeout`` s) and delete its outputs."""
        if self._process is None or self._process.poll() is not None:
            if self._process is not None:
                self._finish()
            return
        self._cancelled = True
        self._signal(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
            self._process.wait()
        self._finish()

    def _signal(self, sig) -> None:
        try:
            if WINDOWS:
                # Slicer starts PythonSlicer, a launcher whose child is the real Python: terminate() would end the
                # launcher alone and leave the job running, so the whole tree goes (taskkill ships with Windows).
                done = subprocess.run(["taskkill", "/T", "/F", "/PID", str(self._process.pid)], capture_output=True,
                                      creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
                if done.returncode != 0:
                    self._process.kill()
            else:
                os.killpg(self._process.pid, sig)  # the job's own group: the child and what it started
        except ProcessLookupError:
            pass

    def _finish(self) -> None:
        """After the process ended: collect the remaining output; drop outputs of a failed job."""
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._collect()
        if self._cancelled or self._process.returncode != 0:
            for path in self.outputs:
                path.unlink(missing_ok=True)

    def failure_message(self) -> str | None:
        """Why the job did not succeed, in one line (the CLI's error event); None while running or on success."""
        if self._cancelled:
            return CANCELLED
        code = self.returncode
        if code is None or code == 0:
            return None
        events = [e for e in self.events if e.message.strip()]
        for event in reversed(events):
            if event.kind == ERROR:
                return event.message
        logged = [e.message.strip() for e in events if e.kind == LOG]
        if logged:  # e.g. the last line of a traceback: "RuntimeError: …"
            return logged[-1]
        return f"the command ended with exit status {code} and printed nothing"


def segmentation_job(ct_path, out_path, device: str = "cpu", weights=None, python: str | None = None,
                     start: bool = True, backend: str = "auto") -> BackgroundJob:
    """A `delicaite segment CT --out LABEL` job (started unless ``start`` is False)."""
    args = ["segment", str(ct_path), "--out", str(out_path), "--device", device, "--backend", backend]
    if weights:
        args += ["--weights", str(weights)]
    job = BackgroundJob(args, python=python, outputs=[out_path])
    return job.start() if start else job


def case_job(ap, vp, mask, clinical_path, model, out_dir, device: str = "cpu", python: str | None = None,
             start: bool = True) -> BackgroundJob:
    """A `delicaite case` job writing its files into ``out_dir`` (started unless ``start`` is False)."""
    args = ["case", "--ap", str(ap), "--vp", str(vp), "--clinical", str(clinical_path), "--model", str(model),
            "--out", str(out_dir), "--device", device]
    if mask is not None:
        args += ["--mask", str(mask)]
    job = BackgroundJob(args, python=python)
    return job.start() if start else job


def batch_job(cases_dir, out_dir, device: str = "cpu", model=None, python: str | None = None,
              start: bool = True) -> BackgroundJob:
    """A `delicaite batch CASES --out OUT` job (started unless ``start`` is False)."""
    args = ["batch", str(cases_dir), "--out", str(out_dir), "--device", device]
    if model:
        args += ["--model", str(model)]
    job = BackgroundJob(args, python=python)
    return job.start() if start else job
