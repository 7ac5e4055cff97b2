"""Atomic file writes: write a temporary file beside the target, then rename it over the target."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from condfip.errors import InputError


def atomic_write(path: str | Path, write: Callable[[str], None], what: str = "") -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path``; nothing is left behind on failure.
    ``what`` prefixes the file in the error raised when the folder cannot be written (e.g. "output file ")."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise InputError(f"cannot write {what}{str(path)!r} ({err.strerror or err}); fix: check that the folder "
                         f"exists and is writable") from None
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
