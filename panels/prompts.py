"""The prompts panel: the prompt list, the selected prompt, settings-file import/export."""

from __future__ import annotations

import bpy

from .draw import SubPanel, draw_group


class DEFORUM_UL_prompts(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.prop(item, "frame", text="", emboss=False)
        row.prop(item, "prompt", text="", emboss=False)


class DEFORUM_PT_prompts(SubPanel, bpy.types.Panel):
    bl_label = "Prompts"
    groups = ("prompts",)
    bl_options = set()

    def draw(self, context):
        layout, settings = self.setup(context)
        row = layout.row()
        row.template_list("DEFORUM_UL_prompts", "", settings, "prompts", settings,
                          "prompt_index", rows=3)
        col = row.column(align=True)
        col.operator("deforum.prompt_add", icon="ADD", text="")
        col.operator("deforum.prompt_remove", icon="REMOVE", text="")
        if 0 <= settings.prompt_index < len(settings.prompts):
            item = settings.prompts[settings.prompt_index]
            layout.prop(item, "frame")
            layout.prop(item, "prompt")
            layout.prop(item, "negative")
        layout.operator("deforum.prompts_import", icon="TEXT")
        row = layout.row(align=True)
        row.operator("deforum.import_settings", icon="IMPORT", text="Import Settings")
        row.operator("deforum.settings_export", icon="EXPORT", text="Export Settings")
        layout.operator("deforum.import_parseq", icon="IMPORT", text="Import Parseq Manifest")
        draw_group(layout, settings, "prompts")


CLASSES = (DEFORUM_UL_prompts, DEFORUM_PT_prompts)
