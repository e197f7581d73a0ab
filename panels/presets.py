"""Preset menus (Blender's preset system): coherence/sampling and 2D motion.

The presets shipped in the add-on's ``addon/presets/`` folder are read in place, beside
the user's own (saved by the add-preset operators under Blender's user scripts,
``presets/deforum/…``), so an add-on update brings new shipped presets and never
touches the user's.
"""

from __future__ import annotations

from pathlib import Path

import bpy

SHIPPED = Path(__file__).resolve().parents[1] / "addon" / "presets"


def search_paths(kind: str) -> list[str]:
    """The folders of preset kind ``kind``: shipped with the add-on, then the user's."""
    return [str(SHIPPED / kind), *bpy.utils.preset_paths(f"deforum/{kind}")]


class _PresetMenu:
    preset_operator = "script.execute_preset"
    kind = ""
    add_operator = ""

    def draw(self, context):
        self.path_menu(search_paths(self.kind), self.preset_operator,
                       filter_ext=lambda ext: ext.lower() == ".py",
                       add_operator=self.add_operator,
                       display_name=lambda name: bpy.path.display_name(name,
                                                                       title_case=False))


class DEFORUM_MT_coherence_presets(_PresetMenu, bpy.types.Menu):
    """Coherence and sampling presets, from a quick preview to the final render"""

    bl_idname = "DEFORUM_MT_coherence_presets"
    bl_label = "Quality Presets"
    preset_subdir = "deforum/coherence"
    kind = "coherence"
    add_operator = "deforum.coherence_preset_add"


class DEFORUM_MT_motion_presets(_PresetMenu, bpy.types.Menu):
    """2D motion without a camera: zoom, drift and pan schedules"""

    bl_idname = "DEFORUM_MT_motion_presets"
    bl_label = "2D Motion Presets"
    preset_subdir = "deforum/motion_2d"
    kind = "motion_2d"
    add_operator = "deforum.motion_preset_add"


def draw_preset_row(layout, menu) -> None:
    """The preset menu with its add/remove buttons, as Blender's own preset rows."""
    row = layout.row(align=True)
    row.menu(menu.bl_idname, text=menu.bl_label)
    row.operator(menu.add_operator, text="", icon="ADD")
    row.operator(menu.add_operator, text="", icon="REMOVE").remove_active = True


CLASSES = (DEFORUM_MT_coherence_presets, DEFORUM_MT_motion_presets)
