"""`DELICAITELib.jobs`: a `delicaite` command in a child process, with typed progress events, cancel and failures."""

import numpy as np
import pytest
import SimpleITK as sitk

from DELICAITELib.jobs import CANCELLED, BackgroundJob, python_executable, segmentation_job
from DELICAITELib.phantom import make_phantom
from DELICAITELib.progress import LOG, PROGRESS, ProgressEvent, Reporter


@pytest.fixture(scope="module")
def phantom_ct(tmp_path_factory):
    """The synthetic portal-venous CT as NRRD (small: 192 x 160 x 40) and its true label map."""
    phantom = make_phantom()
    path = tmp_path_factory.mktemp("jobs") / "phantom_vp.nrrd"
    sitk.WriteImage(phantom.vp, str(path))
    return path, phantom.label


def finish(job):
    """Poll like the GUI timer does until the process ends; the events seen on the way."""
    seen = []
    while job.wait(0.1) is None:
        seen += job.poll()
    return seen + job.poll()


def test_segmentation_job_writes_the_label_and_reports_progress(phantom_ct, tmp_path):
    ct, truth = phantom_ct
    out = tmp_path / "label.nrrd"
    job = segmentation_job(ct, out, device="cpu")
    events = finish(job)

    assert job.returncode == 0, job.output
    assert job.succeeded and not job.running and job.failure_message() is None
    assert events == job.events and [e.message for e in events] == job.output
    # Every step came as a typed event with the share of the work done, in order, up to the whole;
    # the summary the command prints on stdout is a plain log line naming the file.
    fractions = [e.fraction for e in events if e.kind == PROGRESS]
    assert len(fractions) >= 5 and fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    logs = [e.message for e in events if e.kind == LOG]
    assert any(m.startswith("liver ") and m.endswith(f"wrote {out} and label.review.json") for m in logs)
    # the phantom has no lungs, so the gate's warning comes last, where the caller shows it
    assert logs[-1].startswith("WARNING: the automatic liver mask is implausible") and "no lung base" in logs[-1]

    label = sitk.ReadImage(str(out))
    assert label.GetSize() == truth.GetSize() and label.GetSpacing() == truth.GetSpacing()
    # The child process gives exactly what the library gives in this process (one algorithm, every door).
    from DELICAITELib.segmentation.backends import segment_ct

    in_process = segment_ct(sitk.ReadImage(str(ct)), device="cpu")
    predicted = sitk.GetArrayFromImage(label)
    assert np.array_equal(predicted, sitk.GetArrayFromImage(in_process))
    assert np.count_nonzero(predicted == 1) > 0
    assert np.count_nonzero(predicted == 2) == 0  # the shipped weights' automatic tumour is withheld
    # and it found most of the phantom's liver (the network was trained on real CT, not phantoms; its mask
    # spills beyond the phantom's liver, which the gate's warning above marks)
    reference = sitk.GetArrayFromImage(truth) >= 1
    assert np.count_nonzero((predicted >= 1) & reference) > 0.7 * np.count_nonzero(reference)


def test_cancelled_job_stops_and_leaves_no_output(phantom_ct, tmp_path):
    ct, _ = phantom_ct
    out = tmp_path / "label.nrrd"
    out.write_bytes(b"half-written")  # a partial file from an earlier attempt must not survive as a result
    job = segmentation_job(ct, out, device="cpu")
    assert job.running  # it has only just started: importing torch alone takes longer than this
    job.cancel(timeout=5)

    assert not job.running
    assert job.cancelled and not job.succeeded
    assert job.returncode != 0
    assert job.failure_message() == CANCELLED
    assert not out.exists()
    job.cancel()  # a second cancel does nothing
    assert job.failure_message() == CANCELLED


def test_missing_file_gives_the_cli_message(tmp_path):
    missing = tmp_path / "nowhere.nrrd"
    job = segmentation_job(missing, tmp_path / "label.nrrd")
    finish(job)
    assert job.returncode == 2
    assert job.failure_message() == f"file not found: {missing}"
    assert not (tmp_path / "label.nrrd").exists()


def test_non_ct_gives_the_cli_message(tmp_path):
    photo = tmp_path / "photo.nrrd"
    values = (np.random.default_rng(0).random((12, 48, 48)) * 255).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(values), str(photo))
    job = segmentation_job(photo, tmp_path / "label.nrrd")
    finish(job)
    assert job.returncode == 2 and not job.cancelled
    message = job.failure_message()
    assert "does not look like CT" in message and "Hounsfield" in message
    assert not message.startswith("error:")


def test_unknown_command_ends_with_argparse_message():
    job = BackgroundJob(["no-such-command"]).start()
    assert job.wait() == 2
    assert "invalid choice: 'no-such-command'" in job.failure_message()


def test_job_api_before_start_and_interpreter():
    job = BackgroundJob(["--version"])
    assert not job.started and not job.running and job.returncode is None
    assert job.failure_message() is None and job.output == []
    assert job.command[0] == python_executable()  # outside Slicer: this interpreter
    job.start()
    assert job.wait() == 0
    assert job.output[-1].startswith("delicaite ")
    with pytest.raises(RuntimeError):
        job.start()


def test_events_travel_as_one_line_each_and_parts_add_up():
    """A Reporter maps each part's fractions into the whole job; the line format carries them exactly."""
    seen = []
    whole = Reporter(seen.append)
    for k in range(2):
        case = whole.part(k / 2, (k + 1) / 2, f"[case {k + 1}/2] ")
        case("loading", 0.0)
        case.part(0.5, 1.0)("segmenting", 0.5)
    assert [(e.message, e.fraction) for e in seen] == [
        ("[case 1/2] loading", 0.0), ("[case 1/2] segmenting", 0.375),
        ("[case 2/2] loading", 0.5), ("[case 2/2] segmenting", 0.875)]
    for event in seen:
        assert ProgressEvent.from_line(event.to_line()) == event
    assert ProgressEvent.from_line("Traceback (most recent call last):") == ProgressEvent(
        "Traceback (most recent call last):", None, LOG)
    Reporter()("nobody listens", 0.5)  # a reporter without a callback is silent


def test_cancel_ends_the_real_python_behind_a_launcher(phantom_ct, tmp_path):
    """Slicer's PythonSlicer is a launcher whose child is the real Python: cancelling must end both."""
    import os
    import stat
    import sys
    import time

    from DELICAITELib.jobs import BackgroundJob

    ct, _ = phantom_ct
    launcher = tmp_path / "PythonSlicer"
    launcher.write_text(f'#!/bin/sh\n"{sys.executable}" "$@" &\necho $! > "{tmp_path}/child.pid"\nwait $!\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
    job = BackgroundJob(["segment", str(ct), "--out", str(tmp_path / "label.nrrd")], python=str(launcher))
    job.start()
    for _ in range(100):
        if (tmp_path / "child.pid").is_file() and (tmp_path / "child.pid").read_text().strip():
            break
        time.sleep(0.05)
    child = int((tmp_path / "child.pid").read_text())
    os.kill(child, 0)  # the real Python runs
    job.cancel(timeout=5)
    time.sleep(0.2)
    stat_file = f"/proc/{child}/stat"
    state = open(stat_file).read().split(") ")[1][0] if os.path.exists(stat_file) else "gone"
    assert state in ("gone", "Z")  # ended (a zombie only waits for init to reap it)


def test_on_windows_cancel_ends_the_whole_process_tree(monkeypatch):
    """taskkill /T ends the launcher and the Python it started; kill() only if taskkill fails."""
    import signal
    from types import SimpleNamespace

    from DELICAITELib import jobs

    killed, calls = [], []
    process = SimpleNamespace(pid=4242, kill=lambda: killed.append(True), terminate=lambda: killed.append("launcher"))
    monkeypatch.setattr(jobs, "WINDOWS", True)
    monkeypatch.setattr(jobs.subprocess, "run", lambda command, **kw: calls.append(command) or SimpleNamespace(returncode=0))
    stand_in = SimpleNamespace(_process=process)
    jobs.BackgroundJob._signal(stand_in, signal.SIGTERM)
    assert calls == [["taskkill", "/T", "/F", "/PID", "4242"]] and killed == []
    monkeypatch.setattr(jobs.subprocess, "run", lambda command, **kw: SimpleNamespace(returncode=128))
    jobs.BackgroundJob._signal(stand_in, signal.SIGTERM)
    assert killed == [True]
