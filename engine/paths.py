"""Input files named by settings: local paths only, checked in one place."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError


def local_path(path: str, key: str) -> Path:
    """``path`` as a Path; a URL is refused with an error naming the setting ``key``.

    The engine runs offline on purpose (farms, air-gapped studios), so it never
    fetches an input itself: the user downloads it and gives the file.
    """
    if "://" in path:
        raise InputError(f"{key}: {path!r} is a URL; this engine never downloads, give a local "
                         "file", key=key, value=path)
    return Path(path)
