"""condfip.atomic: all-or-nothing writes with the permissions a plain open() would give."""

from __future__ import annotations

import os
import stat

import pytest

from condfip.atomic import atomic_write, atomic_write_text
from condfip.errors import InputError


def test_atomic_write_text_replaces_and_honours_umask(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    old_mask = os.umask(0o027)
    try:
        atomic_write_text(target, "new\n")
    finally:
        os.umask(old_mask)
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("precious")

    def broken(tmp: str) -> None:
        with open(tmp, "w") as handle:
            handle.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_unwritable_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does-not-exist"):
        atomic_write_text(tmp_path / "does-not-exist" / "x.txt", "x")
