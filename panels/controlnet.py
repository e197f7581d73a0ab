"""The ControlNet panel: up to five units, each a sub-panel with its model, the source
of its control images (a file or folder, or a pass of this scene), its keyframable
weight and guidance schedules and its control mode. A unit without a model, or not
enabled, is greyed with a note saying what it lacks; nothing is hidden."""

from __future__ import annotations

import bpy

from ..addon import controlnet_units, prefs, props, relevance
from ..addon.controlnet_units import FILE, key
from .draw import SubPanel, draw_setting

# A unit's settings in the order drawn (the rest follow in the settings table's order).
FIRST = ("model", "vid_path", "module", "weight", "guidance_start", "guidance_end",
         "control_mode")
# Add-on options shown below the source for the scene pass that reads them.
PASS_OPTIONS = {"MASK": "collection", "OPENPOSE": "armature"}


class DEFORUM_PT_controlnet(SubPanel, bpy.types.Panel):
    bl_label = "ControlNet"
    groups = (controlnet_units.GROUP,)

    def draw(self, context):
        layout, settings = self.setup(context)
        state = relevance.snapshot(settings)
        running = [u for u in controlnet_units.UNITS if controlnet_units.active(state, u)]
        if running:
            layout.label(text="Units running: " + ", ".join(map(str, running)), icon="INFO")
        else:
            layout.label(text="No unit runs: enable one and set its ControlNet model",
                         icon="INFO")
        if not prefs.model_path(prefs.get(context)) or settings.preview_motion:
            layout.label(text="ControlNet acts only when diffusing (not in the motion "
                         "preview)")
        layout.label(text="Scene sources are rendered per frame at the render size first")


def _unit_parts(unit: int) -> list[str]:
    """The unit's table rows, ``FIRST`` first, without the enable switch (its header)."""
    names = [s.name for s in props.BY_GROUP.get(controlnet_units.GROUP, ())
             if controlnet_units.unit_of(s.name) == unit]
    parts = [name.split("_", 2)[2] for name in names]
    rest = [p for p in parts if p not in FIRST and p != "enabled"]
    return [p for p in FIRST if p in parts] + rest


def _note(layout, state, unit: int) -> None:
    """Why a unit does nothing, when it does nothing."""
    if not controlnet_units.has_model(state.get(key(unit, "model"))):
        layout.label(text="Set a ControlNet model (local folder or file) to use this unit",
                     icon="INFO")
    elif not state.get(key(unit, "enabled")):
        layout.label(text="Tick the unit's checkbox to use it", icon="INFO")


def _draw_unit(unit: int, layout, settings) -> None:
    state = relevance.snapshot(settings)
    _note(layout, state, unit)
    acts = controlnet_units.active(state, unit)
    for part in _unit_parts(unit):
        draw_setting(layout, settings, key(unit, part), state)
        if part == "model":
            col = layout.column()
            col.active = acts
            col.prop(settings, key(unit, "source"))
            source = getattr(settings, key(unit, "source"))
            if source in PASS_OPTIONS:
                col.prop(settings, key(unit, PASS_OPTIONS[source]))
            elif source != FILE:
                col.label(text="Rendered with Cycles before the engine starts")


def _unit_panel(unit: int) -> type:
    def draw_header(self, context):
        self.layout.prop(context.scene.deforum, key(unit, "enabled"), text="")

    def draw(self, context):
        layout, settings = self.setup(context)
        _draw_unit(unit, layout, settings)
    return type(f"DEFORUM_PT_controlnet_unit_{unit}", (SubPanel, bpy.types.Panel),
                {"bl_label": f"Unit {unit}", "bl_parent_id": DEFORUM_PT_controlnet.__name__,
                 "draw_header": draw_header, "draw": draw,
                 "__doc__": f"ControlNet unit {unit}"})


CLASSES = (DEFORUM_PT_controlnet, *(_unit_panel(u) for u in controlnet_units.UNITS))
