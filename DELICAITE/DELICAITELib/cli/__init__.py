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
    try:
        args.func(args)
    except DelicaiteError as err:
        error(str(err))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
