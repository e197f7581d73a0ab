"""Operators: thin adapters over ``runner`` (render), ``bake`` and ``job`` (engine)."""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from .. import bake, compat, job, prefs, runner
from ..engine.errors import SettingsError
from ..engine.settings import effective_settings, load_settings


def _report_error(op, scene, message: str):
    runner.fail(scene, message)
    op.report({"ERROR"}, message)
    return {"CANCELLED"}


# ---------------------------------------------------------------- camera bake

class DEFORUM_OT_bake_camera(bpy.types.Operator):
    """Sample the camera at every frame of the scene range into Deforum motion schedules"""

    bl_idname = "deforum.bake_camera"
    bl_label = "Bake Camera"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        scene = context.scene
        try:
            result = bake.sample(context, scene)
        except bake.BakeError as exc:
            return _report_error(self, scene, str(exc))
        scene.deforum.baked = json.dumps({
            "start": result.start, "frames": result.frames,
            "mode": scene.deforum.animation_mode, "scale": scene.deforum.camera_scale,
            "fov": result.fovs, "schedules": result.camera_schedules})
        cam = scene.deforum.camera or scene.camera
        message = (f"Baked {result.frames} frames of {cam.name!r} "
                   f"({scene.frame_start}–{scene.frame_end}) into "
                   f"{', '.join(result.camera_schedules) or 'no'} schedules")
        scene.deforum.status, scene.deforum.status_error = message, False
        self.report({"INFO"}, message)
        return {"FINISHED"}


# ---------------------------------------------------------------- render

def _draw_status(self, context):
    run = runner.running()
    if run is None:
        return
    factor, text = run.progress()
    self.layout.progress(factor=factor, type="BAR", text="Deforum: " + text)


class DEFORUM_OT_render(bpy.types.Operator):
    """Bake the camera, run the Deforum engine in the background, put the frames in the VSE"""

    bl_idname = "deforum.render"
    bl_label = "Render Deforum"
    bl_options = {"REGISTER"}

    _timer = None
    _run = None

    @classmethod
    def poll(cls, context):
        return runner.running() is None

    def _prepare(self, context):
        try:
            return runner.prepare(context)
        except runner.RunError as exc:
            _report_error(self, context.scene, str(exc))
            return None

    def execute(self, context):
        run = self._prepare(context)
        if run is None:
            return {"CANCELLED"}
        self._run = run
        wm = context.window_manager
        wm.progress_begin(0.0, 1.0)
        try:
            level, message = runner.run_blocking(
                context, run, on_progress=lambda r: wm.progress_update(r.progress()[0]))
        finally:
            wm.progress_end()
        return self._done(level, message)

    def invoke(self, context, event):
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
        if run.in_scene_pass:  # one frame per tick: the UI stays responsive between frames
            runner.scene_pass_step(context, run)
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


# ---------------------------------------------------------------- prompts

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


def split_negative(text: str) -> tuple[str, str]:
    if "--neg" in text:
        positive, negative = text.split("--neg", 1)
        return positive.strip(), negative.strip()
    return text.strip(), ""


class DEFORUM_OT_prompts_import(bpy.types.Operator, ImportHelper):
    """Read the prompts of a Deforum settings file (JSON; never executed)"""

    bl_idname = "deforum.prompts_import"
    bl_label = "Import Prompts"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".txt"
    filter_glob: StringProperty(default="*.txt;*.json", options={"HIDDEN"})

    def execute(self, context):
        scene = context.scene
        try:
            loaded = load_settings(self.filepath)
        except SettingsError as exc:
            return _report_error(self, scene, str(exc))
        rows: dict[int, list[str]] = {}
        skipped = []
        for table, slot in ((loaded["animation_prompts"], 0), (loaded["negative_prompts"], 1)):
            for key, text in table.items():
                try:
                    frame = int(str(key).strip())
                except ValueError:
                    skipped.append(str(key))
                    continue
                entry = rows.setdefault(frame, ["", ""])
                if slot == 0:
                    entry[0], neg = split_negative(str(text))
                    entry[1] = entry[1] or neg
                else:
                    entry[1] = str(text)
        settings = scene.deforum
        settings.prompts.clear()
        for frame in sorted(rows):
            row = settings.prompts.add()
            row.frame = scene.frame_start + frame
            row.prompt, row.negative = rows[frame]
        message = f"Imported {len(rows)} prompts from {Path(self.filepath).name}"
        if skipped:
            message += f"; skipped keys that are expressions: {', '.join(skipped)}"
        self.report({"INFO"}, message)
        return {"FINISHED"}


class DEFORUM_OT_settings_export(bpy.types.Operator, ExportHelper):
    """Write this scene's Deforum settings file (camera baked), as a render would"""

    bl_idname = "deforum.settings_export"
    bl_label = "Export Deforum Settings"

    filename_ext = ".txt"
    filter_glob: StringProperty(default="*.txt;*.json", options={"HIDDEN"})

    def execute(self, context):
        scene = context.scene
        try:
            baked = bake.sample(context, scene, with_camera=scene.deforum.use_camera)
            data = runner.compose_settings(scene, baked, prefs.get(context))
            checked = runner.validate(data)
        except (bake.BakeError, runner.RunError) as exc:
            return _report_error(self, scene, str(exc))
        with open(self.filepath, "w", encoding="utf-8") as handle:
            json.dump(effective_settings(checked), handle, indent=4, ensure_ascii=False)
            handle.write("\n")
        self.report({"INFO"}, f"Wrote {self.filepath}")
        return {"FINISHED"}


# ---------------------------------------------------------------- engine set-up

_INSTALL_LOG: collections.deque[str] = collections.deque(maxlen=8)
_INSTALL_STATE = {"thread": None, "check": None}


def install_log_tail() -> list[str]:
    return list(_INSTALL_LOG)


def _poll_background() -> float | None:
    """Timer: copy results of background checks/installs into the preferences."""
    addon_prefs = prefs.get()
    result = _INSTALL_STATE.get("check")
    if result is not None and addon_prefs is not None:
        addon_prefs.engine_status = result
        _INSTALL_STATE["check"] = None
    runner.redraw()
    thread = _INSTALL_STATE.get("thread")
    return 0.5 if thread is not None and thread.is_alive() else None


class DEFORUM_OT_check_engine(bpy.types.Operator):
    """Run the engine's self-check with the configured Python and show the result"""

    bl_idname = "deforum.check_engine"
    bl_label = "Check Engine"

    def execute(self, context):
        addon_prefs = prefs.get(context)
        python = prefs.engine_python(addon_prefs)
        if bpy.app.background:
            ok, message = job.run_self_check(python)
            if addon_prefs is not None:
                addon_prefs.engine_status = message
            self.report({"INFO" if ok else "ERROR"}, message)
            return {"FINISHED"} if ok else {"CANCELLED"}

        def work():
            _INSTALL_STATE["check"] = job.run_self_check(python)[1]

        thread = threading.Thread(target=work, name="deforum-engine-check", daemon=True)
        _INSTALL_STATE["thread"] = thread
        if addon_prefs is not None:
            addon_prefs.engine_status = f"Checking {python or '(no engine Python)'}…"
        thread.start()
        compat.timer_register(_poll_background, first_interval=0.5)
        return {"FINISHED"}


def base_python() -> str:
    """An interpreter to create the venv from: python3.11 on PATH, else Blender's."""
    return shutil.which("python3.11") or sys.executable


def requirements_file() -> Path:
    return job.engine_root() / "requirements.txt"


class DEFORUM_OT_install_engine(bpy.types.Operator):
    """Create a venv in the add-on's user folder and install the engine's pinned requirements"""

    bl_idname = "deforum.install_engine"
    bl_label = "Install Engine"

    dry_run: BoolProperty(name="Dry Run", default=False, options={"SKIP_SAVE"},
                          description="Only report the commands")

    def commands(self) -> list[list[str]]:
        return job.install_commands(base_python(), prefs.installed_venv(), requirements_file())

    def execute(self, context):
        if not requirements_file().is_file():
            self.report({"ERROR"}, f"requirements.txt not found in {job.engine_root()}")
            return {"CANCELLED"}
        commands = self.commands()
        if self.dry_run:
            for cmd in commands:
                self.report({"INFO"}, " ".join(cmd))
            return {"FINISHED"}
        thread = _INSTALL_STATE.get("thread")
        if thread is not None and thread.is_alive():
            self.report({"WARNING"}, "an engine install or check is already running")
            return {"CANCELLED"}
        log_path = prefs.user_dir("logs") / "install-engine.log"

        def work():
            with open(log_path, "a", encoding="utf-8") as log:
                for cmd in commands:
                    _INSTALL_LOG.append("$ " + " ".join(cmd))
                    log.write("$ " + " ".join(cmd) + "\n")
                    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True,
                                            stdin=subprocess.DEVNULL)
                    for line in proc.stdout:
                        log.write(line)
                        _INSTALL_LOG.append(line.rstrip()[:120])
                    if proc.wait() != 0:
                        _INSTALL_STATE["check"] = (f"Install failed (exit {proc.returncode}); "
                                                   f"log: {log_path}")
                        return
            ok, message = job.run_self_check(str(job.venv_python(prefs.installed_venv())))
            _INSTALL_STATE["check"] = ("Installed. " if ok else "Installed, but: ") + message

        thread = threading.Thread(target=work, name="deforum-engine-install", daemon=True)
        _INSTALL_STATE["thread"] = thread
        _INSTALL_LOG.clear()
        thread.start()
        if bpy.app.background:
            thread.join()
            _poll_background()
        else:
            compat.timer_register(_poll_background, first_interval=0.5)
        self.report({"INFO"}, f"Installing the engine into {prefs.installed_venv()} "
                              f"(log: {log_path})")
        return {"FINISHED"}


CLASSES = (
    DEFORUM_OT_bake_camera,
    DEFORUM_OT_render,
    DEFORUM_OT_cancel,
    DEFORUM_OT_prompt_add,
    DEFORUM_OT_prompt_remove,
    DEFORUM_OT_prompts_import,
    DEFORUM_OT_settings_export,
    DEFORUM_OT_check_engine,
    DEFORUM_OT_install_engine,
)


def register() -> None:
    bpy.types.STATUSBAR_HT_header.append(_draw_status)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(_draw_status)
    compat.timer_unregister(_poll_background)
