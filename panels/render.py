"""The main Deforum panel: render/cancel, the warm engine, mode and the run's status."""

from __future__ import annotations

import bpy

from ..addon import prefs, runner
from ..engine.client import warm
from .draw import DeforumPanel


class DEFORUM_PT_render(DeforumPanel, bpy.types.Panel):
    bl_label = "Deforum"
    bl_idname = "DEFORUM_PT_render"

    def draw(self, context):
        layout, settings = self.setup(context)
        run = runner.running()
        if run is None:
            layout.operator("deforum.render", icon="RENDER_ANIMATION")
            addon_prefs = prefs.get(context)
            if warm.server_pid() is not None or (addon_prefs and addon_prefs.keep_engine_warm):
                layout.operator("deforum.release_engine", icon="UNLINKED")
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


CLASSES = (DEFORUM_PT_render,)
