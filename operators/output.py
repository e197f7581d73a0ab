"""Output helpers: resolution presets near the model's native size, and opening the
output folder and the last engine log in the system's file browser / editor."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty

from ..addon import compose, preflight, prefs


def open_path(path: Path) -> None:
    """Open ``path`` with the system's default application (Blender's own operator)."""
    bpy.ops.wm.path_open(filepath=str(path))


class DEFORUM_OT_set_resolution(bpy.types.Operator):
    """Set the scene's resolution to about the model's native size, keeping its aspect"""

    bl_idname = "deforum.set_resolution"
    bl_label = "Set Resolution"
    bl_options = {"REGISTER", "UNDO"}

    size: EnumProperty(
        name="Size", default="512",
        items=[("512", "512", "Stable Diffusion 1.x (512×512 pixels)"),
               ("768", "768", "Stable Diffusion 2 (768×768 pixels)"),
               ("1024", "1024", "SDXL (1024×1024 pixels)")])

    def execute(self, context):
        render = context.scene.render
        width, height = preflight.preset_resolution(render.resolution_x, render.resolution_y,
                                                    int(self.size))
        render.resolution_x, render.resolution_y = width, height
        render.resolution_percentage = 100
        self.report({"INFO"}, f"Deforum: resolution {width}×{height}")
        return {"FINISHED"}


class DEFORUM_OT_open_output_folder(bpy.types.Operator):
    """Open the folder Deforum writes this scene's frames to"""

    bl_idname = "deforum.open_output_folder"
    bl_label = "Open Output Folder"

    def execute(self, context):
        scene = context.scene
        try:
            folder = compose.output_dir(scene, prefs.get(context))
        except compose.RunError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        batch = folder / scene.deforum.batch_name
        if not folder.is_dir():
            self.report({"WARNING"}, f"Deforum: nothing rendered yet; {folder} does not exist")
            return {"CANCELLED"}
        open_path(batch if batch.is_dir() else folder)
        return {"FINISHED"}


class DEFORUM_OT_open_log(bpy.types.Operator):
    """Open the engine log of the last Deforum run"""

    bl_idname = "deforum.open_log"
    bl_label = "Open Log"

    def execute(self, context):
        log = context.scene.deforum.last_log
        if not log or not Path(log).is_file():
            self.report({"WARNING"}, "Deforum: no engine log yet; render once first")
            return {"CANCELLED"}
        open_path(Path(log))
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_set_resolution, DEFORUM_OT_open_output_folder, DEFORUM_OT_open_log)
