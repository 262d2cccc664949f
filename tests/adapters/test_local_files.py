"""Walking folders for `modbot scan`: lazily, in order, and naming what cannot be scanned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.adapters.local_files import Found, count, read_file, walk
from bot.core.errors import ScanFailed


def test_ten_thousand_files_are_walked_lazily_in_name_order(tmp_path: Path) -> None:
    """10,000 files in 10 folders: the first comes before the walk has listed the other
    folders (a generator over one listing at a time), all come in name order, each once."""
    for d in range(10):
        folder = tmp_path / f"d{d}"
        folder.mkdir()
        for f in range(1000):
            (folder / f"{f:04}.jpg").touch()
    walker = walk(str(tmp_path))
    first = next(walker)
    assert first == Found(f"{tmp_path}/d0/0000.jpg")
    # d9 is not listed yet: the walk sees the file under its new name.
    os.rename(tmp_path / "d9" / "0999.jpg", tmp_path / "d9" / "renamed.jpg")
    rest = list(walker)
    assert len(rest) == 9999
    assert rest[-1] == Found(f"{tmp_path}/d9/renamed.jpg")
    assert all(found.problem is None for found in rest)
    assert count([str(tmp_path)]) == 10_000


def test_bad_entries_are_yielded_with_their_reason(tmp_path: Path) -> None:
    """Loops, dangling links and special files are named, not skipped; hidden ones are left
    out; a link back to an enclosing folder stops there."""
    (tmp_path / "a.png").touch()
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "thumb.png").touch()
    (tmp_path / "self.png").symlink_to("self.png")
    (tmp_path / "gone.png").symlink_to("missing.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "back").symlink_to("..")
    os.mkfifo(tmp_path / "pipe.png")
    assert list(walk(str(tmp_path))) == [
        Found(f"{tmp_path}/a.png"),
        Found(f"{tmp_path}/gone.png", "broken symbolic link"),
        Found(f"{tmp_path}/pipe.png", "not a regular file"),
        Found(f"{tmp_path}/self.png", "symbolic link loop"),
        Found(f"{tmp_path}/sub/back", "symbolic link loop"),
    ]


def test_a_named_hidden_file_is_scanned(tmp_path: Path) -> None:
    """Only entries inside a folder are filtered; a path given itself is always taken."""
    (tmp_path / ".secret.png").touch()
    assert list(walk(str(tmp_path / ".secret.png"))) == [Found(f"{tmp_path}/.secret.png")]


def test_read_file_caps_the_size_and_names_unreadable_files(tmp_path: Path) -> None:
    """The download cap holds for files too; an I/O error is 'unreadable' with its cause."""
    path = tmp_path / "big.png"
    path.write_bytes(b"x" * (2 * 1024 * 1024 + 1))
    with pytest.raises(ScanFailed, match="file too large"):
        read_file(str(path), 2 * 1024 * 1024)
    assert read_file(str(path), 3 * 1024 * 1024)[:1] == b"x"
    mem = tmp_path / "mem.png"
    mem.symlink_to("/proc/self/mem")  # reading at offset 0 fails with EIO, even for root
    with pytest.raises(ScanFailed, match=r"unreadable \(Input/output error\)"):
        read_file(str(mem), 1024)
