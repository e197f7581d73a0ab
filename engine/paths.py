"""Paths named by settings and arguments: local inputs, output folders, names the file
system takes; each checked in one place, before anything is read or written."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from .errors import InputError, shown

_NAME_MAX, _PATH_MAX = 255, 4096  # Linux's limits, used where the system does not say


def local_path(path: str, key: str) -> Path:
    """``path`` as a Path; a URL is refused with an error naming the setting ``key``.

    The engine runs offline on purpose (farms, air-gapped studios), so it never
    fetches an input itself: the user downloads it and gives the file.
    """
    if "://" in path:
        raise InputError(f"{key}: {path!r} is a URL; this engine never downloads, give a local "
                         "file", key=key, value=path)
    return Path(path)


def unusable(path: str) -> str | None:
    """Why the operating system cannot take ``path`` as a file name, or None.

    A NUL byte ends a C string and text that has no bytes in the file-system
    encoding (a lone surrogate from JSON) cannot be passed at all.
    """
    if "\x00" in path:
        return "it has a NUL byte"
    try:
        os.fsencode(path)
    except UnicodeError:
        return "it has characters the file system cannot store"
    return None


def read_text(path: Path, limit: int, key: str) -> str:
    """``path``'s UTF-8 text (a BOM dropped), for the setting ``key``.

    Refused with an error naming ``key``: a file over ``limit`` bytes (at most
    ``limit`` + 1 are read) and anything but a regular file, since a pipe waits
    for a writer forever and a device may never end.  Opened without waiting, so
    a pipe is refused rather than waited on.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        raise InputError(f"{key}: {shown(str(path))} is not a regular file (a pipe or a "
                         "device)", key=key, value=str(path))
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{key}: {shown(str(path))} is over {limit // 2**20} MiB, more than "
                         "such a file holds", key=key, value=str(path))
    return data.decode("utf-8-sig")


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (what a new folder would be made in)."""
    return next((p for p in (path, *path.parents) if os.path.lexists(p)), Path("."))


def _limit(folder: Path, name: str, fallback: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError):
        return fallback


def check_outdir(outdir: str, key: str = "outdir") -> Path:
    """The output folder as a Path, refused (error naming ``key``) where no folder can be.

    Checked before anything is written: the path must be one the system takes,
    what already exists of it must be a folder, and a batch folder and a file
    in it, each as long as names may be, must still fit the path length limit.
    """
    why = unusable(outdir) or ("it is empty (. is the current folder)" if not outdir.strip()
                               else None)
    if why is None:
        path = Path(outdir)
        existing = nearest_existing(path)
        room = 2 * (_limit(existing, "PC_NAME_MAX", _NAME_MAX) + 1)
        if not existing.is_dir():
            why = "it is not a folder" if existing == path else f"{existing} is not a folder"
        elif len(os.fsencode(os.path.abspath(path))) + room > _limit(existing, "PC_PATH_MAX",
                                                                      _PATH_MAX):
            why = "the path is too long to hold a batch folder and its files"
    if why:
        raise InputError(f"{key}: {shown(outdir)} cannot be the output folder: {why}", key=key,
                         value=outdir)
    return Path(outdir)


def check_folder_name(name: str, parent: Path, key: str, value: str, room: int = 0) -> None:
    """``name`` must be one plain folder name that fits the file system under ``parent``,
    with ``room`` bytes to spare for the names made from it (a timestring's files).

    Refused with an error naming the setting ``key``: path tricks (``..``,
    separators), what the system cannot take, a name over its length limit.
    """
    why = unusable(name)
    if why is None and (name in (".", "..") or re.search(r"[/\\]", name)):
        why = "must be a plain name, not a path"
    elif why is None:
        limit = _limit(nearest_existing(parent), "PC_NAME_MAX", _NAME_MAX) - room
        size = len(os.fsencode(name))
        why = f"is {size} bytes long; names here have at most {limit}" if size > limit else None
        if why and room:
            why += f" (the file names made from it add up to {room} bytes)"
    if why:
        raise InputError(f"{key}: {shown(value)} {why}", key=key, value=value)
