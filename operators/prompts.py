"""Prompt list editing: add a prompt at the current frame, remove the selected one."""

from __future__ import annotations

import bpy

class DEFORUM_OT_prompt_add(bpy.types.Operator):
    """Add a prompt starting at the current frame"""

    bl_idname = "deforum.prompt_add"
    bl_label = "Add Prompt"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.deforum
        row = settings.prompts.add()
        row.frame = context.scene.frame_current
        settings.prompt_index = len(settings.prompts) - 1
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
        settings = context.scene.deforum
        settings.prompts.remove(settings.prompt_index)
        settings.prompt_index = max(0, min(settings.prompt_index, len(settings.prompts) - 1))
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_prompt_add, DEFORUM_OT_prompt_remove)
