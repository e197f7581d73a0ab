"""Guide image list editing: add an image at the current frame, remove the selected one."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, StringProperty

from ..addon.rows import add_row, remove_active


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
        row = add_row(context.scene.deforum, "guides", context.scene.frame_current)
        row.image = self.filepath
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
        remove_active(context.scene.deforum, "guides")
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_guide_add, DEFORUM_OT_guide_remove)
