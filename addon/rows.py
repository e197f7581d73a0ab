"""Frame-keyed lists of scene.deforum (prompts, guide images): adding a row at the current
frame and removing the active one, the same way for every list."""

from __future__ import annotations

from typing import Any


def add_row(settings: Any, rows: str, frame: int) -> Any:
    """A new row of ``settings.<rows>`` at ``frame``, made the active one."""
    collection = getattr(settings, rows)
    row = collection.add()
    row.frame = frame
    setattr(settings, _index(rows), len(collection) - 1)
    return row


def remove_active(settings: Any, rows: str) -> None:
    """Remove the active row of ``settings.<rows>``; the next one (or the last) is active."""
    collection, index = getattr(settings, rows), _index(rows)
    collection.remove(getattr(settings, index))
    setattr(settings, index, max(0, min(getattr(settings, index), len(collection) - 1)))


def _index(rows: str) -> str:
    """The active-row property of a list: ``prompts`` → ``prompt_index``."""
    return rows.removesuffix("s") + "_index"
