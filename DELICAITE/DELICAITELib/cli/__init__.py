"""The `delicaite` command. Each sub-module adds its sub-commands; every algorithm stays in the library.

Bad input the user can fix ends with one line, ``error: …``, and exit status 2; progress goes to
stderr so that stdout stays clean for scripts.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import DelicaiteError
from . import batch_commands, case_commands, cohort_commands, deep_commands, segmentation_commands
from .common import PROGRESS_FORMATS, error, set_progress_format


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="delicaite", description="TACE vs HAIC decision support for large HCC.")
    parser.add_argument("--version", action="version", version=f"delicaite {__version__}")
    parser.add_argument("--allow-slice-gaps", action="store_true",
                        help="read a DICOM series with a missing or damaged slice (the gap is recorded as a warning) "
                             "instead of refusing it")
    parser.add_argument("--progress-format", choices=PROGRESS_FORMATS, default="text",
                        help="progress on stderr as text (default) or as one JSON event line each (for programs "
                             "that run delicaite, such as the Slicer modules)")
    sub = parser.add_subparsers(dest="command", required=True)
    for commands in (case_commands, segmentation_commands, cohort_commands, deep_commands, batch_commands):
        commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_progress_format(args.progress_format)
    if args.allow_slice_gaps:
        from ..io.dicom import allow_slice_gaps

        allow_slice_gaps()
    try:
        args.func(args)
    except DelicaiteError as err:
        error(str(err))
        return 2
    except OSError as err:  # a path the user gave: not a folder, not writable, a symlink loop, a full disk
        error(describe_os_error(err))
        return 2
    return 0


def describe_os_error(err: OSError) -> str:
    """One line for a file-system failure: what went wrong, on which path, and what to check."""
    reason = err.strerror or type(err).__name__
    where = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    return f"{reason}: {where}" if where else f"{reason} ({err})"


if __name__ == "__main__":
    sys.exit(main())
