"""Atomic file writes: write a temporary file beside the target, then rename it over the target.

Every file condfip writes for a user (CLI outputs, saved SCMs, simulated datasets, training checkpoints,
exported weights) goes through ``atomic_write`` or ``atomic_write_text``: a reader never sees a half-written
file, a failed write leaves the previous file in place, and the new file gets the permissions a plain
``open(path, "w")`` would give it (0o666 minus the umask).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from condfip.errors import InputError


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


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
        os.chmod(tmp, _umask_mode())
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str, what: str = "") -> Path:
    """``atomic_write`` for text (UTF-8, ``\\n`` line endings as given)."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    return atomic_write(path, write, what)
