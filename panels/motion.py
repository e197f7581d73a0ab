"""The motion panel: the camera to bake, the warp options and the mode's motion schedules."""

from __future__ import annotations

import bpy

from ..addon import compose
from ..engine.settings_table import motion_keys
from ..addon import relevance
from .draw import SHOWN_ELSEWHERE, SubPanel, draw_setting
from .presets import DEFORUM_MT_motion_presets, draw_preset_row


class DEFORUM_PT_motion(SubPanel, bpy.types.Panel):
    bl_label = "Motion"
    groups = ("motion",)
    bl_options = set()

    def draw(self, context):
        layout, settings = self.setup(context)
        if settings.animation_mode == "2D":
            draw_preset_row(layout, DEFORUM_MT_motion_presets)
        layout.prop(settings, "use_camera")
        col = layout.column()
        col.active = settings.use_camera
        col.prop(settings, "camera")
        scene_depth = compose.uses_scene_depth(settings)
        sub = col.column()
        sub.active = not scene_depth  # scene depth bakes at 200 units per scene unit
        sub.prop(settings, "camera_scale")
        col.operator("deforum.bake_camera", icon="CAMERA_DATA")
        mode = settings.animation_mode
        if mode == "3D":
            sub = layout.column()
            sub.active = not scene_depth  # scene depth forces the pinhole warp
            sub.prop(settings, "warp_model")
            layout.prop(settings, "padding_mode")
            layout.prop(settings, "sampling_mode")
        keys = [k for k in motion_keys(mode) if k not in SHOWN_ELSEWHERE]
        box = layout.box()
        box.label(text="Schedules (the camera replaces the motion keys)"
                  if settings.use_camera else "Schedules")
        state = relevance.snapshot(settings)
        for name in keys:
            draw_setting(box, settings, name, state)


CLASSES = (DEFORUM_PT_motion,)
