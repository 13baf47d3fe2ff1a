"""JSON in and out: the ``default=`` of json.dump for what our results hold, and reading a JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DelicaiteError


def json_default(value):
    """numpy scalars (and anything else with .item()) become Python numbers; tuples and sets become lists."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_json(path, what: str, shown=None):
    """The JSON content of ``path``; a missing, unreadable or invalid file is a DelicaiteError naming
    ``what`` it should have been and ``shown`` (default: the path) and the line at fault."""
    path = Path(path)
    shown = path if shown is None else shown
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DelicaiteError(f"{what} file not found: {shown}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DelicaiteError(f"cannot read the {what} file {shown} ({err})") from None
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except json.JSONDecodeError as err:
        raise DelicaiteError(f"{what} file {shown} is not valid JSON (line {err.lineno}: {err.msg})") from None
    except RecursionError:
        raise DelicaiteError(f"{what} file {shown} is nested too deeply to be a {what} file") from None
    except _DuplicateKey as err:
        raise DelicaiteError(f"{what} file {shown} gives {err.args[0]!r} twice: keep one value") from None


class _DuplicateKey(Exception):
    pass


def _refuse_duplicate_keys(pairs):
    """A JSON object whose key repeats is ambiguous (json.loads would keep the last value silently)."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key[:80])
        seen[key] = value
    return seen
