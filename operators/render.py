"""Render: start a Deforum run (modal with a UI, blocking without) after its pre-flight
check, cancel it, release the warm engine, the status-bar progress drawn while a run
is going and the Render menu's entry."""

from __future__ import annotations

import textwrap

import bpy
from bpy.props import BoolProperty, StringProperty

from ..addon import compose, console, runner
from ..engine.client import warm
from .common import report_error


def draw_status(self, context) -> None:
    """Status-bar header hook: the running render's progress bar."""
    run = runner.running()
    if run is None:
        return
    factor, text = run.progress()
    self.layout.progress(factor=factor, type="BAR", text="Deforum: " + text)


def draw_render_menu(self, context) -> None:
    """Topbar › Render hook: Render Deforum beside Blender's own renders (F3 finds it)."""
    self.layout.separator()
    self.layout.operator("deforum.render", icon="RENDER_ANIMATION")

class DEFORUM_OT_render(bpy.types.Operator):
    """Bake the camera, run the Deforum engine in the background, put the frames in the VSE"""

    bl_idname = "deforum.render"
    bl_label = "Render Deforum"
    bl_options = {"REGISTER"}

    confirmed: BoolProperty(name="Confirmed", options={"HIDDEN", "SKIP_SAVE"},
                            description="The pre-flight warnings were accepted")
    warnings: StringProperty(name="Warnings", options={"HIDDEN", "SKIP_SAVE"},
                             description="The pre-flight warnings shown in the popup")
    offer_sizes: BoolProperty(name="Offer Sizes", options={"HIDDEN", "SKIP_SAVE"},
                              description="The popup offers resolution presets")

    _timer = None
    _run = None

    @classmethod
    def poll(cls, context):
        return runner.running() is None

    def _preflight(self, context):
        """The pre-flight report, or None after reporting its errors (the run stops)."""
        report = compose.check(context, context.scene)
        if report.errors:
            report_error(self, context.scene, "; ".join(report.errors))
            return None
        return report

    def draw(self, context):  # the pre-flight popup
        col = self.layout.column(align=True)
        for warning in self.warnings.split("\n"):
            for i, line in enumerate(textwrap.wrap(warning, 80)):
                col.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
        if self.offer_sizes:
            row = self.layout.row(align=True)
            row.label(text="Resolution:")
            for size in ("512", "768", "1024"):
                row.operator("deforum.set_resolution", text=size).size = size

    def _prepare(self, context):
        try:
            run = runner.prepare(context)
        except compose.RunError as exc:
            report_error(self, context.scene, str(exc))
            return None
        for note in run.notes:
            self.report({"INFO"}, "Deforum: " + note)
        return run

    def execute(self, context):
        if self.confirmed:  # the pre-flight popup's "Render Anyway": run as invoke() would
            bpy.ops.deforum.render("INVOKE_DEFAULT", confirmed=True)
            return {"FINISHED"}
        report = self._preflight(context)
        if report is None:
            return {"CANCELLED"}
        for warning in report.warnings:
            self.report({"WARNING"}, "Deforum: " + warning)
        run = self._prepare(context)
        if run is None:
            return {"CANCELLED"}
        self._run = run
        wm = context.window_manager
        lines = console.FramePrinter() if bpy.app.background else None  # blender -b: a log

        def on_progress(r):
            wm.progress_update(r.progress()[0])
            if lines is not None:
                lines(r)

        wm.progress_begin(0.0, 1.0)
        try:
            level, message = runner.run_blocking(context, run, on_progress=on_progress)
        finally:
            wm.progress_end()
        return self._done(level, message)

    def invoke(self, context, event):
        if not self.confirmed:
            report = self._preflight(context)
            if report is None:
                return {"CANCELLED"}
            if report.warnings:  # shown in a popup; its OK calls execute() with confirmed
                self.warnings = "\n".join(report.warnings)
                self.offer_sizes = report.resolution is not None
                self.confirmed = True
                return context.window_manager.invoke_props_dialog(
                    self, width=560, title="Render Deforum: check before the run",
                    confirm_text="Render Anyway")
        run = self._prepare(context)
        if run is None:
            return {"CANCELLED"}
        runner.start(context, run)
        if run.finished:  # could not even start the process
            return self._done(*runner.finish(context, run))
        self._run = run
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.modal_handler_add(self)
        runner.redraw()
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        run = self._run
        if event.type == "ESC" and event.value == "PRESS":
            run.request_cancel()
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":  # (event.timer is a new wrapper each time: no `is`)
            return {"PASS_THROUGH"}
        if run.in_scene_pass:  # a frame per tick, colour frames in Blender's render job
            runner.scene_pass_step(context, run, background=True)
        else:
            if run.cancel_requested:
                run.job.request_cancel()
            runner.handle(context, run, run.job.poll())
        runner.redraw()
        if run.finished:
            self._stop_timer(context)
            return self._done(*runner.finish(context, run))
        return {"PASS_THROUGH"}

    def cancel(self, context):  # Blender aborts the modal (file load, window closed)
        self._stop_timer(context)
        if self._run is not None:
            self._run.request_cancel()  # stops a scene pass too
            self._run.job.cancel()

    def _stop_timer(self, context):
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None

    def _done(self, level, message):
        self.report({level}, message)
        runner.redraw()
        return {"CANCELLED"} if level == "ERROR" or self._cancelled() else {"FINISHED"}

    def _cancelled(self):
        return self._run is not None and self._run.job.state != "DONE"


class DEFORUM_OT_cancel(bpy.types.Operator):
    """Stop the running Deforum render; frames written so far are kept"""

    bl_idname = "deforum.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return runner.running() is not None

    def execute(self, context):
        run = runner.running()
        if run is not None:
            run.request_cancel()
            self.report({"INFO"}, "Deforum: stopping the engine…")
        return {"FINISHED"}


class DEFORUM_OT_release_engine(bpy.types.Operator):
    """Stop the warm engine process, freeing its (GPU) memory; the next render starts it again"""

    bl_idname = "deforum.release_engine"
    bl_label = "Release Engine"

    @classmethod
    def poll(cls, context):
        return warm.server_pid() is not None

    def execute(self, context):
        pid = warm.server_pid()
        runner.release_engine()
        self.report({"INFO"}, f"Deforum: released the warm engine (process {pid})")
        runner.redraw()
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_render, DEFORUM_OT_cancel, DEFORUM_OT_release_engine)
