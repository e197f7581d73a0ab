"""Prompt list editing: add a prompt at the current frame, remove the selected one."""

from __future__ import annotations

import bpy

from ..addon.rows import add_row, remove_active


class DEFORUM_OT_prompt_add(bpy.types.Operator):
    """Add a prompt starting at the current frame"""

    bl_idname = "deforum.prompt_add"
    bl_label = "Add Prompt"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        add_row(context.scene.deforum, "prompts", context.scene.frame_current)
        return {"FINISHED"}


class DEFORUM_OT_prompt_remove(bpy.types.Operator):
    """Remove the selected prompt"""

    bl_idname = "deforum.prompt_remove"
    bl_label = "Remove Prompt"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.deforum.prompts) > 0

    def execute(self, context):
        remove_active(context.scene.deforum, "prompts")
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_prompt_add, DEFORUM_OT_prompt_remove)
