"""Writing files so that a reader, or a crash, never sees half of one.

Every writer puts the content under a temporary name beside the target (same folder, same file
system), flushes it and renames it over the target (``os.replace``, atomic on POSIX and Windows). A
failure removes the temporary file and leaves the old target as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

TEMP_MARK = ".tmp"


def temporary_beside(path, suffix: str = "") -> Path:
    """A fresh hidden name in ``path``'s folder: ``.<name>.<pid>.<random>.tmp<suffix>`` (the suffix keeps
    a format readers pick by extension, e.g. ``.nii.gz``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_MARK}{suffix}")


def _suffix_of(path: Path) -> str:
    name = path.name.lower()
    for double in (".nii.gz", ".tar.gz"):
        if name.endswith(double):
            return double
    return path.suffix


@contextlib.contextmanager
def replacing(path, keep_suffix: bool = False) -> Iterator[Path]:
    """``with replacing(target) as temporary:`` write ``temporary``; on success it replaces ``target``."""
    path = Path(path)
    temporary = temporary_beside(path, _suffix_of(path) if keep_suffix else "")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes_atomically(path, data: bytes) -> Path:
    with replacing(path) as temporary:
        # os.open with 0o666 keeps the user's umask (tempfile would make the file private, 0600)
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def write_text_atomically(path, text: str) -> Path:
    return write_bytes_atomically(path, text.encode("utf-8"))


def write_json_atomically(path, record, *, indent: int | None = 1, default: Callable | None = None) -> Path:
    """JSON of ``record`` (NaN refused: results must stay valid JSON) written atomically."""
    from ..jsonable import json_default

    text = json.dumps(record, indent=indent, default=default or json_default, allow_nan=False, ensure_ascii=False)
    return write_text_atomically(path, text + "\n")


def write_csv_atomically(frame, path) -> Path:
    """A pandas DataFrame as CSV (no index), written atomically."""
    with replacing(path) as temporary:
        frame.to_csv(temporary, index=False)
    return Path(path)


def write_npz_atomically(path, arrays: dict) -> Path:
    """numpy arrays as an uncompressed .npz (np.savez), written atomically."""
    import numpy as np

    with replacing(path, keep_suffix=True) as temporary:
        np.savez(temporary, **arrays)
    return Path(path)


def write_image_atomically(path, image, compress: bool = True) -> Path:
    """A SimpleITK image (the format from ``path``'s suffix), written atomically."""
    import SimpleITK as sitk

    with replacing(path, keep_suffix=True) as temporary:
        sitk.WriteImage(image, str(temporary), compress)
    return Path(path)


def remove_stale_temporaries(folder) -> int:
    """Delete the temporary files a killed writer left in ``folder``; returns how many."""
    stale = [p for p in Path(folder).glob(f".*{TEMP_MARK}*") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def replace_folder(staged, target) -> Path:
    """Put the complete folder ``staged`` in the place of ``target``: the old one is moved aside first and
    removed only once the new one stands, so at every moment one whole version exists."""
    staged, target = Path(staged), Path(target)
    aside = None
    if target.exists():
        aside = temporary_beside(target)
        os.replace(target, aside)
    try:
        os.replace(staged, target)
    except BaseException:
        if aside is not None:
            os.replace(aside, target)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return target
