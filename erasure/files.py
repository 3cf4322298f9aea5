"""Files that hold personal data are created private: 0600, in 0700 folders.

Request records, audit exports, reports, replies and the demo's sample mail
name requesters and (hashed or raw) viewer ids. Created with the process umask
(usually 022) they would be readable by every account on the host, so every
place that creates such a file goes through this module.

The modes are set explicitly after creation, so a loose umask cannot widen
them and a strict one (e.g. 0277) cannot leave a file its owner cannot write.
An existing file or folder keeps its mode: the operator may have chosen it
(a group-readable export folder, say), and overwriting a file never loosens it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "create_private_file", "make_private_dirs", "open_private", "write_private"]


def make_private_dirs(directory: str | os.PathLike[str]) -> Path:
    """Create ``directory`` and any missing parents as 0700; folders that exist are left as they are."""
    directory = Path(directory)
    missing: list[Path] = []
    p = directory
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, PRIVATE_DIR)
        except FileExistsError:
            continue  # made by someone else meanwhile: theirs, leave its mode alone
        os.chmod(d, PRIVATE_DIR)
    return directory


def _open_fd(path: Path, flags: int) -> int:
    """An fd for writing; a new file is made 0600, an existing one keeps its mode."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return os.open(path, flags)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private(path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = None,
                 newline: str | None = None) -> IO[Any]:
    """Open ``path`` for writing (``"w"``, ``"wb"``, ``"a"``, ``"ab"``) as a private file.

    Like ``open(path, "w")`` otherwise: a missing folder is an error (call
    ``make_private_dirs`` first where the tool owns the folder), an existing
    file is truncated (or appended to) and keeps its mode.
    """
    if mode not in ("w", "wb", "a", "ab"):
        raise ValueError(f"open_private writes only; mode {mode!r} is not one of w, wb, a, ab")
    path = Path(path)
    flags = os.O_WRONLY | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = _open_fd(path, flags)
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding=encoding or "utf-8", newline=newline)


def write_private(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write a whole private file (text as UTF-8)."""
    with open_private(path, "wb") as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)


def create_private_file(path: str | os.PathLike[str]) -> bool:
    """Make sure ``path`` exists, creating it empty and 0600 if missing; True if it was created.

    For files another library will open (SQLite): SQLite gives its -wal, -shm
    and -journal files the main database file's mode, so a private database
    file keeps its companions private too. A missing folder is an error.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return True
