"""Guide image list editing: add an image at the current frame, remove the selected one."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, StringProperty


class DEFORUM_OT_guide_add(bpy.types.Operator):
    """Add a guide image from the current frame on (choose its file)"""

    bl_idname = "deforum.guide_add"
    bl_label = "Add Guide Image"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_image: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        settings = context.scene.deforum
        row = settings.guides.add()
        row.frame, row.image = context.scene.frame_current, self.filepath
        settings.guide_index = len(settings.guides) - 1
        return {"FINISHED"}


class DEFORUM_OT_guide_remove(bpy.types.Operator):
    """Remove the selected guide image"""

    bl_idname = "deforum.guide_remove"
    bl_label = "Remove Guide Image"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.deforum.guides) > 0

    def execute(self, context):
        settings = context.scene.deforum
        settings.guides.remove(settings.guide_index)
        settings.guide_index = max(0, min(settings.guide_index, len(settings.guides) - 1))
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_guide_add, DEFORUM_OT_guide_remove)
