"""Small helpers shared by the sub-commands: progress and errors on stderr, as text or JSON event lines."""

from __future__ import annotations

import sys

from ..progress import ERROR, ProgressEvent

PROGRESS_FORMATS = ("text", "json")
_format = {"progress": "text"}


def set_progress_format(name: str) -> None:
    """"text": messages for a person; "json": one event line each, for a parent process (progress.py)."""
    _format["progress"] = name


def progress(event: ProgressEvent | str) -> None:
    """A progress event (or a plain message) on stderr, so that stdout stays clean for scripts."""
    if not isinstance(event, ProgressEvent):
        event = ProgressEvent(str(event))
    print(event.to_line() if _format["progress"] == "json" else event.message, file=sys.stderr, flush=True)


MAX_ERROR_CHARS = 600  # an over-long value the user gave is not echoed back in full


def error(message: str) -> None:
    """The one line that says why a command stopped (and, in json mode, the same as an error event)."""
    message = " ".join(str(message).split())
    if len(message) > MAX_ERROR_CHARS:
        message = f"{message[:MAX_ERROR_CHARS]}… ({len(message) - MAX_ERROR_CHARS} more characters)"
    if _format["progress"] == "json":
        print(ProgressEvent(message, None, ERROR).to_line(), file=sys.stderr, flush=True)
    print(f"error: {message}", file=sys.stderr, flush=True)
