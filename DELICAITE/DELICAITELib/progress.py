"""Progress of long work as typed events, and the one line that carries an event to another process.

A library function that takes ``progress`` calls it with :class:`ProgressEvent` objects: a message for
a person and, where the function knows it, the fraction of the whole job done. Work made of parts
(a batch of cases, a case that segments) hands each part a :class:`Reporter` scoped to its share, so
fractions add up without any part knowing the whole.

A `delicaite` command started with ``--progress-format json`` prints each event as one line,
``@delicaite {"kind": "progress", "message": ..., "fraction": ...}``; `jobs.BackgroundJob` reads those
lines back into events, so nobody matches printed text to know how far a job has come.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

PROGRESS, LOG, ERROR = "progress", "log", "error"
LINE_PREFIX = "@delicaite "


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a job: ``message`` for a person; ``fraction`` of the whole job done (0–1) when known.

    ``kind`` is "progress" (a step), "log" (a plain output line of a child process) or "error" (why a
    job stopped)."""

    message: str
    fraction: float | None = None
    kind: str = PROGRESS

    def __str__(self) -> str:
        return self.message

    def to_line(self) -> str:
        """The event as one line for a parent process (see the module docstring)."""
        return LINE_PREFIX + json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_line(cls, line: str) -> ProgressEvent:
        """An event line back as the event; any other line becomes a "log" event holding it."""
        if line.startswith(LINE_PREFIX):
            try:
                fields = json.loads(line[len(LINE_PREFIX):])
                fraction = fields.get("fraction")
                return cls(str(fields["message"]), None if fraction is None else float(fraction),
                           str(fields.get("kind", PROGRESS)))
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
        return cls(line, None, LOG)


ProgressCallback = Callable[[ProgressEvent], None]


class Reporter:
    """Sends events to a callback, scoped to a part of the job.

    ``reporter("loading", 0.5)`` says half of this part is done; the callback receives the fraction of
    the whole job (``start + 0.5 * (end - start)``) and the message behind this part's ``prefix``.
    Without a callback the events go nowhere.
    """

    def __init__(self, callback: ProgressCallback | None = None, start: float = 0.0, end: float = 1.0,
                 prefix: str = ""):
        self.callback, self.start, self.end, self.prefix = callback, float(start), float(end), prefix

    def __call__(self, message: str, fraction: float | None = None) -> None:
        if self.callback is None:
            return
        whole = None if fraction is None else self.start + min(max(float(fraction), 0.0), 1.0) * (self.end - self.start)
        self.callback(ProgressEvent(self.prefix + str(message), whole))

    def part(self, start: float, end: float, prefix: str = "") -> Reporter:
        """A reporter for the share [start, end] of this part (fractions of this part)."""
        span = self.end - self.start
        return Reporter(self.callback, self.start + start * span, self.start + end * span, self.prefix + prefix)


def reporter(progress: Reporter | ProgressCallback | None) -> Reporter:
    """``progress`` as a Reporter: a Reporter as it is, a callback wrapped, None silent."""
    return progress if isinstance(progress, Reporter) else Reporter(progress)
