"""Small helpers shared by the sub-commands: progress on stderr, reading the clinical JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import DelicaiteError


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_json_file(path: str, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DelicaiteError(f"{what} file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise DelicaiteError(f"{what} file {path} is not valid JSON (line {err.lineno}: {err.msg})") from None
