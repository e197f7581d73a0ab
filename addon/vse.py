"""The frames of a run as one image-sequence strip in the Video Sequence Editor.

A strip belongs to the (scene, batch) that rendered it: ``deforum_owner`` is
stored on it as a custom property, with the run's timestring and settings
file. A re-render replaces only the strip with its own owner key (keeping its
channel when that is still free); other strips are never touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from . import compat

MAX_CHANNEL = 128
OWNER = "deforum_owner"


def owner_key(scene_name: str, batch_name: str) -> str:
    return f"{scene_name}/{batch_name}"


def own_strips(sed, owner: str) -> list:
    return [s for s in compat.strips_collection(sed) if s.get(OWNER) == owner]


def _busy(sed, channel: int, start: int, end: int, ignore=()) -> bool:
    for s in compat.strips_collection(sed):
        if s in ignore or s.channel != channel:
            continue
        if s.frame_final_start < end and start < s.frame_final_end:
            return True
    return False


def free_channel(sed, start: int, end: int, preferred: int | None = None, ignore=()) -> int:
    """``preferred`` if nothing else covers [start, end) there, else the lowest free channel."""
    if preferred is not None and not _busy(sed, preferred, start, end, ignore):
        return preferred
    for channel in range(1, MAX_CHANNEL + 1):
        if not _busy(sed, channel, start, end, ignore):
            return channel
    raise RuntimeError(f"no free VSE channel for frames {start}–{end - 1}")


def place_strip(scene, paths: Sequence[str], *, name: str, start: int, owner: str,
                info: dict[str, str] | None = None):
    """Replace the owner's strip (if any) by one image strip of ``paths`` at ``start``."""
    if not paths:
        raise ValueError("no frames to put in the sequencer")
    sed = scene.sequence_editor or scene.sequence_editor_create()
    strips = compat.strips_collection(sed)
    previous = own_strips(sed, owner)
    preferred = previous[0].channel if previous else None
    for strip in previous:
        strips.remove(strip)
    channel = free_channel(sed, start, start + len(paths), preferred)
    strip = strips.new_image(name=name, filepath=os.path.abspath(paths[0]), channel=channel,
                             frame_start=start, fit_method="FIT")
    for path in paths[1:]:
        strip.elements.append(os.path.basename(path))
    strip[OWNER] = owner
    for key, value in (info or {}).items():
        strip[key] = value
    return strip


def append_frames(strip, paths: Sequence[str]) -> None:
    """Extend a live strip with frames that arrived since it was made."""
    have = len(strip.elements)
    for path in paths[have:]:
        strip.elements.append(os.path.basename(path))
