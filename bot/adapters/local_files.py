"""Image files on this machine for `modbot scan`: folders walked lazily, files read with a cap.

A folder is walked one directory at a time (only names are held, never contents), so a tree of
10,000 images costs the memory of one directory listing plus the images being scanned. What
cannot be scanned is yielded with its reason rather than skipped: a dangling symbolic link, a
symbolic link loop, something that is not a regular file, a directory that cannot be listed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from bot.core.errors import ScanFailed


@dataclass(frozen=True)
class Found:
    """One file to scan, or a path that cannot be scanned and why."""

    path: str
    problem: str | None = None


def walk(root: str) -> Iterator[Found]:
    """The files under `root` (a file yields itself), depth first in name order.

    Hidden entries (names starting with ".") inside a folder are left out, as file managers do
    (.DS_Store, thumbnail caches); a path given itself is always scanned.
    """
    yield from _walk(root, ancestors=frozenset())


def _walk(path: str, ancestors: frozenset[tuple[int, int]]) -> Iterator[Found]:
    try:
        info = os.stat(path)  # follows symbolic links, as a user pointing at a folder expects
    except OSError as exc:
        yield Found(path, _stat_problem(path, exc))
        return
    if stat.S_ISREG(info.st_mode):
        yield Found(path)
        return
    if not stat.S_ISDIR(info.st_mode):
        yield Found(path, "not a regular file")
        return
    identity = (info.st_dev, info.st_ino)
    if identity in ancestors:  # a link back to a folder this walk is already inside
        yield Found(path, "symbolic link loop")
        return
    try:
        with os.scandir(path) as entries:
            names = sorted(entry.name for entry in entries if not entry.name.startswith("."))
    except OSError as exc:
        yield Found(path, f"folder cannot be read ({exc.strerror or exc})")
        return
    inside = ancestors | {identity}
    for name in names:
        yield from _walk(os.path.join(path, name), inside)


def _stat_problem(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return "broken symbolic link"
    if exc.errno == errno.ENOENT:
        return "no such file or folder"
    return f"unreadable ({exc.strerror or exc})"


def read_file(path: str, max_bytes: int) -> bytes:
    """The file's bytes, or ScanFailed naming why (unreadable, too large). Blocking: run it in a
    thread."""
    try:
        with open(path, "rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise ScanFailed(f"unreadable ({exc.strerror or exc})", path) from None
    if len(data) > max_bytes:
        raise ScanFailed(f"file too large (over {max_bytes // (1024 * 1024)} MB)", path)
    return data


def count(roots: list[str]) -> int:
    """How many entries walking `roots` yields (a second, cheap pass: names only)."""
    return sum(1 for root in roots for _ in walk(root))
