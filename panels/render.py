"""The main Deforum panel: the set-up checklist until it is all green, what Render Deforum
makes (diffusion with which model on which device, or a motion preview), render/cancel,
the warm engine, mode and the run's status."""

from __future__ import annotations

import bpy

from ..addon import prefs, runner, setup_ui
from ..engine.client import checklist, warm
from .draw import DeforumPanel


class DEFORUM_PT_render(DeforumPanel, bpy.types.Panel):
    bl_label = "Deforum"
    bl_idname = "DEFORUM_PT_render"

    def draw(self, context):
        layout, settings = self.setup(context)
        run = runner.running()
        addon_prefs = prefs.get(context)
        items = prefs.checklist_items(addon_prefs)
        if not checklist.all_green(items):
            setup_ui.draw_checklist(layout, items, busy=prefs.INSTALLER.busy())
        what = run.what if run is not None else setup_ui.what_renders(
            prefs.model_path(addon_prefs), bool(settings.preview_motion),
            addon_prefs.device if addon_prefs else "auto", prefs.INSTALLER.report,
            settings.animation_mode)
        icon = "SHADERFX" if what.startswith("Diffusion") else \
            "ERROR" if what.startswith("Needs") else "CAMERA_DATA"
        layout.label(text=what, icon=icon)
        if run is None:
            layout.operator("deforum.render", icon="RENDER_ANIMATION")
            if warm.server_pid() is not None or (addon_prefs and addon_prefs.keep_engine_warm):
                layout.operator("deforum.release_engine", icon="UNLINKED")
            _draw_farm(layout, settings)
        else:
            factor, text = run.progress()
            layout.progress(factor=factor, type="BAR", text=text)
            if run.job.frames:
                layout.label(text=f"Last frame: {run.job.frames[-1].path}", icon="IMAGE_DATA")
            layout.operator("deforum.cancel", icon="CANCEL")
        layout.prop(settings, "animation_mode")
        layout.prop(settings, "preview_motion")
        layout.prop(settings, "live_strip")
        if settings.status:
            box = layout.box()
            box.label(text=settings.status, icon="ERROR" if settings.status_error else "INFO")
            if settings.status_error and settings.last_log:
                box.label(text=f"Log: {settings.last_log}")


def _draw_farm(layout, settings) -> None:
    """The Render panel's farm rows, beside Render Deforum."""
    box = layout.box()
    row = box.row(align=True)
    row.operator("deforum.submit_farm", icon="NETWORK_DRIVE")
    row.operator("deforum.collect_farm", icon="SEQUENCE")
    box.prop(settings, "farm_backend")
    if settings.farm_backend == "RAY":
        box.prop(settings, "farm_address")
    elif settings.farm_backend == "OPENJD":
        box.prop(settings, "farm_bundle")
    box.prop(settings, "farm_shots")
    box.prop(settings, "farm_seeds")
    box.prop(settings, "farm_prompts")


CLASSES = (DEFORUM_PT_render,)
