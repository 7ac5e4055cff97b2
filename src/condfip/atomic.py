"""Atomic file writes: write a temporary file beside the target, then rename it over the target.

Every file condfip writes for a user (CLI outputs, saved SCMs, simulated datasets, training checkpoints,
exported weights, the demo's and the benchmark's tables and plots) goes through ``atomic_write`` (or
``atomic_write_text``, ``atomic_savefig``, built on it): a reader never sees a half-written
file, a failed write leaves the previous file in place, and the new file gets the permissions a plain
``open(path, "w")`` would give it (0o666 minus the umask).

Nothing a user has is replaced by accident: a target that exists and is not a regular file (a directory, a
device node such as /dev/null, a FIFO, a socket) is refused; a symlink is written *through* (its target file is
replaced, the link stays). Temporary files of our own naming (``.NAME.XXXXXXXX.tmp``) that a killed process left
beside the target are removed on the next write to it, once they are older than ``STALE_TMP_SECONDS``.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from condfip.errors import InputError

STALE_TMP_SECONDS = 60.0  # a temporary file this old belongs to no live write (writes fsync and rename at once)
_TMP_RANDOM = r"[a-z0-9_]{8}"  # tempfile.mkstemp's random part


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def writable_target(path: str | Path, what: str = "") -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or a symlink's final target. Raises InputError
    when it exists and is not a regular file (nothing but a regular file is ever replaced)."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as err:
        raise InputError(f"cannot write {what}{str(path)!r} ({err.strerror or err}); fix: check the path") from None
    if not stat.S_ISREG(info.st_mode):
        via = f" (a symlink to {str(target)!r})" if target != path else ""
        raise InputError(f"{what}{str(path)!r}{via} is {_kind(info.st_mode)}, not a regular file; condfip never "
                         f"replaces it; fix: pass the path of a new or regular file")
    return target


def remove_stale_temporaries(path: Path, older_than: float = STALE_TMP_SECONDS) -> list[Path]:
    """Remove ``.NAME.XXXXXXXX.tmp`` files beside ``path`` (our naming) older than ``older_than`` seconds."""
    folder = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{_TMP_RANDOM}\.tmp")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            if (pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime > older_than):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def atomic_write(path: str | Path, write: Callable[[str], None], what: str = "") -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path``; nothing is left behind on failure.
    ``what`` prefixes the file in the error raised when the folder cannot be written (e.g. "output file ").
    Returns ``path``; through a symlink, the link's target file is the one replaced."""
    path = Path(path)
    target = writable_target(path, what)
    folder = target.parent if str(target.parent) else Path(".")
    remove_stale_temporaries(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise InputError(f"cannot write {what}{str(path)!r} ({err.strerror or err}); fix: check that the folder "
                         f"exists and is writable") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _umask_mode())
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
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


def atomic_savefig(figure, path: str | Path, **options) -> Path:
    """``atomic_write`` for a matplotlib figure; the format comes from ``path``'s suffix (default PNG)."""
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png",
                                                         **options))
