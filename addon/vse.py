"""The frames of a run as one image-sequence strip (a *take*) in the Video Sequence Editor.

A strip belongs to the (scene, batch) that rendered it: ``deforum_owner`` is
stored on it as a custom property (the scene by an id stored on it, so renaming a
shot keeps its takes), with the run's job file (``deforum_job``,
which names the take), timestring and settings file. A re-render adds a new
take and mutes the owner's earlier ones, which stay below it, so the artist
can compare and go back; the same run's own (live) strip is replaced in place.
Other strips are never touched; deleting a take is the artist's choice.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence

import bpy

from . import compat

MAX_CHANNEL = 128
OWNER = "deforum_owner"
TAKE = "deforum_job"  # the run's job file: one per run, known before its first frame


SCENE_ID = "deforum_scene_id"  # on the scene: its id in owner keys
SCENE_NAME = "deforum_scene_name"  # on the scene: its name when the id was last read


def scene_id(scene) -> str:
    """An id for ``scene`` that survives renaming: random, stored on the scene at first
    use.  A copied scene carries its original's id; the one whose name is no longer the
    stored one while its twin exists is the copy, and gets an id of its own."""
    sid = scene.get(SCENE_ID)
    twin = sid and any(s.get(SCENE_ID) == sid for s in bpy.data.scenes if s != scene)
    if not isinstance(sid, str) or (twin and scene.get(SCENE_NAME) != scene.name):
        sid = scene[SCENE_ID] = uuid.uuid4().hex
    scene[SCENE_NAME] = scene.name
    return sid


def find_scene(sid: str):
    """The scene ``scene_id`` gave ``sid`` (None when it is gone)."""
    return next((s for s in bpy.data.scenes if s.get(SCENE_ID) == sid), None)


def owner_key(scene, batch_name: str) -> str:
    return f"{scene_id(scene)}/{batch_name}"


def own_strips(sed, owner: str) -> list:
    return [s for s in compat.strips_collection(sed) if s.get(OWNER) == owner]


def _busy(sed, channel: int, start: int, end: int, ignore=()) -> bool:
    for s in compat.strips_collection(sed):
        if s in ignore or s.channel != channel:
            continue
        if s.frame_final_start < end and start < s.frame_final_end:
            return True
    return False


def free_channel(sed, start: int, end: int, preferred: int | None = None, ignore=(),
                 lowest: int = 1) -> int:
    """``preferred`` if nothing else covers [start, end) there, else the lowest free
    channel from ``lowest`` up."""
    if preferred is not None and not _busy(sed, preferred, start, end, ignore):
        return preferred
    for channel in range(max(lowest, 1), MAX_CHANNEL + 1):
        if not _busy(sed, channel, start, end, ignore):
            return channel
    raise RuntimeError(f"no free VSE channel for frames {start}–{end - 1}")


def place_strip(scene, paths: Sequence[str], *, name: str, start: int, owner: str,
                info: dict[str, str] | None = None):
    """This run's take: one image strip of ``paths`` at ``start``, on top and unmuted.

    The run's earlier strip (same ``info[TAKE]``, e.g. its live strip) is
    replaced on its channel; the owner's other takes are muted and kept.
    """
    if not paths:
        raise ValueError("no frames to put in the sequencer")
    info = info or {}
    sed = scene.sequence_editor or scene.sequence_editor_create()
    strips = compat.strips_collection(sed)
    own = own_strips(sed, owner)
    same = [s for s in own if TAKE in info and s.get(TAKE) == info[TAKE]]
    earlier = [s for s in own if s not in same]
    preferred = same[0].channel if same else None
    for strip in same:
        strips.remove(strip)
    for strip in earlier:
        strip.mute = True
    lowest = max((s.channel for s in earlier), default=0) + 1
    channel = free_channel(sed, start, start + len(paths), preferred, lowest=lowest)
    strip = strips.new_image(name=name, filepath=os.path.abspath(paths[0]), channel=channel,
                             frame_start=start, fit_method="FIT")
    for path in paths[1:]:
        strip.elements.append(os.path.basename(path))
    strip[OWNER] = owner
    for key, value in info.items():
        strip[key] = value
    return strip


def append_frames(strip, paths: Sequence[str]) -> None:
    """Extend a live strip with frames that arrived since it was made."""
    have = len(strip.elements)
    for path in paths[have:]:
        strip.elements.append(os.path.basename(path))


def delete_take(scene, strip) -> str:
    """Remove one take's strip (its frames stay on disk); the newest take left of the
    same owner is unmuted. The removed strip's name."""
    sed = scene.sequence_editor
    owner, name = strip.get(OWNER), strip.name
    compat.strips_collection(sed).remove(strip)
    rest = own_strips(sed, owner) if owner else []
    if rest and all(s.mute for s in rest):
        max(rest, key=lambda s: s.channel).mute = False
    return name


def used_jobs() -> set[str]:
    """The job file of every take in every scene (what Clean Up must keep)."""
    used = set()
    for scene in bpy.data.scenes:
        if scene.sequence_editor is not None:
            used.update(str(s[TAKE]) for s in compat.all_strips(scene.sequence_editor)
                        if s.get(TAKE))
    return used


# ---------------------------------------------------------------- the strips' scene

OWN, THIS = "OWN", "THIS"  # scene.deforum.strips_in
SYNCED = ("frame_start", "frame_end")
SYNCED_RENDER = ("fps", "fps_base", "resolution_x", "resolution_y", "resolution_percentage",
                 "pixel_aspect_x", "pixel_aspect_y")


def follow(target, source) -> None:
    """The sequencer scene takes the 3D scene's frame range, fps and resolution."""
    for name in SYNCED:
        if getattr(target, name) != getattr(source, name):
            setattr(target, name, getattr(source, name))
    for name in SYNCED_RENDER:
        if getattr(target.render, name) != getattr(source.render, name):
            setattr(target.render, name, getattr(source.render, name))


def _new_sequencer_scene(scene):
    """"⟨Scene⟩ Deforum": only strips, shown as the frames are (Standard view)."""
    target = bpy.data.scenes.new(f"{scene.name} Deforum")
    target.render.use_sequencer = True
    target.view_settings.view_transform = "Standard"
    return target


def strips_scene(context, scene, *, create: bool = True):
    """The scene whose sequencer receives ``scene``'s takes (None: not made yet).

    Own Sequencer Scene (the default): ``scene.deforum.sequencer_scene``, made
    on the first render and kept following the 3D scene, so F12 on the 3D
    scene still renders the 3D scene. This Scene: ``scene``'s own sequencer.
    """
    settings = scene.deforum
    if settings.strips_in == THIS:
        return scene
    target = settings.sequencer_scene
    if not create:
        return target
    if target is None:
        target = settings.sequencer_scene = _new_sequencer_scene(scene)
        compat.show_in_sequencer(context, target)
    follow(target, scene)
    return target
