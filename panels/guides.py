"""The guide images list (the webui's looper ``init_images``), drawn under Guided Images
in the Init & Mask panel."""

from __future__ import annotations

import bpy


class DEFORUM_UL_guides(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.prop(item, "frame", text="", emboss=False)
        row.prop(item, "image", text="", emboss=False)


def draw_guides(layout, settings) -> None:
    """The (frame, image) rows with their add/remove buttons and the selected row's fields;
    greyed while Guided Images is off."""
    box = layout.box()
    box.active = settings.use_looper
    box.label(text="Guide Images (from their frame on)")
    row = box.row()
    row.template_list("DEFORUM_UL_guides", "", settings, "guides", settings, "guide_index",
                      rows=3)
    col = row.column(align=True)
    col.operator("deforum.guide_add", icon="ADD", text="")
    col.operator("deforum.guide_remove", icon="REMOVE", text="")
    if 0 <= settings.guide_index < len(settings.guides):
        item = settings.guides[settings.guide_index]
        box.prop(item, "frame")
        box.prop(item, "image")


CLASSES = (DEFORUM_UL_guides,)
