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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="delicaite", description="TACE vs HAIC decision support for large HCC.")
    parser.add_argument("--version", action="version", version=f"delicaite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for commands in (case_commands, segmentation_commands, cohort_commands, deep_commands, batch_commands):
        commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DelicaiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
