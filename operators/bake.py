"""Camera bake: the scene camera's motion as Deforum schedules, stored in the scene."""

from __future__ import annotations

import json

import bpy

from ..addon import bake
from .common import report_error


class DEFORUM_OT_bake_camera(bpy.types.Operator):
    """Sample the camera at every frame of the scene range into Deforum motion schedules"""

    bl_idname = "deforum.bake_camera"
    bl_label = "Bake Camera"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        scene = context.scene
        try:
            result = bake.sample(context, scene)
        except bake.BakeError as exc:
            return report_error(self, scene, str(exc))
        scene.deforum.baked = json.dumps({
            "start": result.start, "frames": result.frames,
            "mode": scene.deforum.animation_mode, "scale": scene.deforum.camera_scale,
            "fov": result.fovs, "schedules": result.camera_schedules})
        cam = bake.scene_camera(scene)
        message = (f"Baked {result.frames} frames of {cam.name!r} "
                   f"({scene.frame_start}–{scene.frame_end}) into "
                   f"{', '.join(result.camera_schedules) or 'no'} schedules")
        scene.deforum.status, scene.deforum.status_error = message, False
        self.report({"INFO"}, message)
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_bake_camera,)
