"""Paths named by settings and arguments: local inputs, output folders, names the file
system takes; each checked in one place, before anything is read or written."""

from __future__ import annotations

import os
import re
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


def read_text(path: Path, limit: int) -> str | None:
    """``path``'s UTF-8 text (a BOM dropped), None when it holds more than ``limit`` bytes.

    Reads at most ``limit`` + 1 bytes: a file that never ends (``/dev/zero``, a
    pipe) is refused instead of filling memory.
    """
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data.decode("utf-8-sig")


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
