"""Save the current coherence/sampling or 2D-motion settings as a named preset
(Blender's ``AddPresetBase``: the preset is a small script under the user's presets)."""

from __future__ import annotations

import bpy
from bl_operators.presets import AddPresetBase

from ..engine.settings_table import camera_keys

COHERENCE_KEYS = ("strength_schedule", "noise_schedule", "contrast_schedule")


def _values(plain: tuple[str, ...], schedules: tuple[str, ...]) -> list[str]:
    """``d.<name>`` for each setting, each schedule with its raw override."""
    names = [*plain, *(n for key in schedules for n in (key, key + "_override"))]
    return [f"d.{name}" for name in names]


class DEFORUM_OT_coherence_preset_add(AddPresetBase, bpy.types.Operator):
    """Save the coherence and sampling settings as a preset (or remove the active one)"""

    bl_idname = "deforum.coherence_preset_add"
    bl_label = "Add Quality Preset"
    preset_menu = "DEFORUM_MT_coherence_presets"
    preset_subdir = "deforum/coherence"
    preset_defines = ["d = bpy.context.scene.deforum"]
    preset_values = _values(("steps", "diffusion_cadence", "sampler", "scale",
                             "color_coherence"), COHERENCE_KEYS)


class DEFORUM_OT_motion_preset_add(AddPresetBase, bpy.types.Operator):
    """Save the 2D motion schedules as a preset (or remove the active one)"""

    bl_idname = "deforum.motion_preset_add"
    bl_label = "Add 2D Motion Preset"
    preset_menu = "DEFORUM_MT_motion_presets"
    preset_subdir = "deforum/motion_2d"
    preset_defines = ["d = bpy.context.scene.deforum"]
    # The 2D motion a camera would otherwise give: the table's 2D camera keys.
    preset_values = _values(("animation_mode", "use_camera"), camera_keys("2D"))


CLASSES = (DEFORUM_OT_coherence_preset_add, DEFORUM_OT_motion_preset_add)
