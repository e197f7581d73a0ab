"""Every Blender-version difference the add-on meets, in one place.

4.2 LTS is the oldest supported version (``blender_version_min``). Each helper
switches on the presence of an attribute rather than on version numbers, so a
point release that back-ports an API is handled too.

* strips: ``sequence_editor.sequences`` (≤ 4.3) → ``.strips`` (4.4+, only name in 5.0)
* fcurves: ``action.fcurves`` (≤ 4.3) → slotted actions with channelbags (4.4+)
* the scene the Sequencer shows: the window's scene → the workspace's
  ``sequencer_scene`` (5.0)
* movie output: ``image_settings.media_type = 'VIDEO'`` must precede ``FFMPEG`` (5.0)
* ``bpy.app.timers.register``: keyword-only options (5.0); always pass them by keyword
* still images: ``image_settings.media_type = 'IMAGE'`` must precede the format (5.0)
* new materials: ``use_nodes`` is needed before 5.0 and deprecated in 5.0
* file paths: a ``//`` (blend-relative) path warns unless the property says it takes one
  (``PATH_SUPPORTS_BLEND_RELATIVE``, newer versions only)
"""

from __future__ import annotations

from typing import Any, Callable

import bpy


def strips_collection(sed: Any) -> Any:
    """The top-level strip collection of a sequence editor (``new_image``, ``remove``)."""
    return sed.strips if hasattr(sed, "strips") else sed.sequences


def all_strips(sed: Any) -> list:
    """Every strip, including those inside meta strips."""
    return list(sed.strips_all if hasattr(sed, "strips_all") else sed.sequences_all)


def show_in_sequencer(context: Any, scene: Any) -> bool:
    """5.0: make ``scene`` the workspace's sequencer scene when it has none, so the
    Sequencer shows it beside the 3D scene; before 5.0 the artist switches scenes
    (False: nothing was changed)."""
    workspace = getattr(context, "workspace", None)
    if workspace is None or not hasattr(workspace, "sequencer_scene"):
        return False
    if workspace.sequencer_scene is not None:
        return False  # the artist's choice
    workspace.sequencer_scene = scene
    return True


def fcurves_for(id_: Any) -> list:
    """The fcurves animating one ID (object, camera data, scene) on any version."""
    ad = getattr(id_, "animation_data", None)
    if ad is None or ad.action is None:
        return []
    if hasattr(ad, "action_slot"):  # 4.4+: slotted actions
        from bpy_extras import anim_utils

        if ad.action_slot is None:
            return []
        bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
        return list(bag.fcurves) if bag is not None else []
    return list(ad.action.fcurves)


def set_movie_output(scene: Any) -> None:
    """Render settings for an H.264 mp4 (5.0 needs media_type before file_format)."""
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"
    scene.render.ffmpeg.format = "MPEG4"
    scene.render.ffmpeg.codec = "H264"


def image_format_changes(settings: Any, file_format: str) -> list[tuple[Any, str, Any]]:
    """(owner, attribute, value) that make ``settings`` write a still ``file_format``.

    In this order: 5.0's ``media_type`` must be IMAGE before an image format
    can be chosen, and restoring in the same order brings a movie back.
    """
    changes = [(settings, "media_type", "IMAGE")] if hasattr(settings, "media_type") else []
    return changes + [(settings, "file_format", file_format)]


def multilayer_exr_changes(settings: Any) -> list[tuple[Any, str, Any]]:
    """(owner, attribute, value) that make ``settings`` write every render pass into one
    EXR (5.0: the multi-layer media type; before: the multi-layer file format)."""
    if hasattr(settings, "media_type"):
        return [(settings, "media_type", "MULTI_LAYER_IMAGE"),
                (settings, "file_format", "OPEN_EXR_MULTILAYER")]
    return [(settings, "file_format", "OPEN_EXR_MULTILAYER")]


def node_material(name: str) -> Any:
    """A new material with a node tree (4.x needs ``use_nodes``, 5.0 deprecates it)."""
    material = bpy.data.materials.new(name)
    if material.node_tree is None:
        material.use_nodes = True
    return material


def timer_register(function: Callable[[], float | None], *, first_interval: float = 0.0,
                   persistent: bool = False) -> None:
    bpy.app.timers.register(function, first_interval=first_interval, persistent=persistent)


def timer_unregister(function: Callable[[], float | None]) -> None:
    if bpy.app.timers.is_registered(function):
        bpy.app.timers.unregister(function)


def online_access() -> bool:
    """Blender's *Allow Online Access* (4.2+); True where Blender has no such switch."""
    return bool(getattr(bpy.app, "online_access", True))


def blend_relative_path() -> set[str]:
    """Property options for a file path that may start with ``//``, where Blender asks."""
    if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties:
        return {"PATH_SUPPORTS_BLEND_RELATIVE"}
    return set()
