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
import numpy as np
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..addon import bake, compat, compose, prefs, props, runner, settings_import
from ..engine.client import install, job, warm
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
            run = runner.prepare(context)
        except compose.RunError as exc:
            _report_error(self, context.scene, str(exc))
            return None
        for note in run.notes:
            self.report({"INFO"}, "Deforum: " + note)
        return run

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


# ---------------------------------------------------------------- settings files

CAMERA_NAME = "Deforum Camera"
CAMERA_TAG = "deforum_import"  # custom property on the camera an import made (reused later)


def _animated_settings(scene) -> set[str]:
    """``scene.deforum`` properties that keyframes or drivers set."""
    ad = scene.animation_data
    curves = [*compat.fcurves_for(scene), *(ad.drivers if ad is not None else ())]
    return {fc.data_path.removeprefix("deforum.") for fc in curves
            if fc.data_path.startswith("deforum.")}


def _imported_camera(scene):
    return next((o for o in scene.objects if o.type == "CAMERA" and o.get(CAMERA_TAG)), None)


def _start_pose(scene, cam) -> np.ndarray | None:
    """A re-import keeps where the camera's first frame was placed."""
    if cam is None:
        return None
    current, subframe = scene.frame_current, scene.frame_subframe
    try:
        scene.frame_set(scene.frame_start)
        return np.array(cam.matrix_basis)
    finally:
        scene.frame_set(current, subframe=subframe)


def _sensor(scene, cam, width: int, height: int) -> settings_import.Sensor:
    """The sensor of the camera to animate (a new camera's defaults) at the file's size."""
    data = cam.data if cam is not None else None
    defaults = bpy.types.Camera.bl_rna.properties
    sensor = [getattr(data, name) if data is not None else defaults[name].default
              for name in ("sensor_width", "sensor_height", "sensor_fit")]
    r = scene.render
    return settings_import.Sensor(*sensor, width, height, r.pixel_aspect_x, r.pixel_aspect_y)


def _plan(scene, loaded):
    """Property values, camera keys and warnings of an import; the scene is not changed."""
    settings = scene.deforum
    rna = settings.bl_rna.properties
    limits = {s.name: (rna[s.name].hard_min, rna[s.name].hard_max) for s in props.UI_SETTINGS
              if rna[s.name].type in ("INT", "FLOAT")}
    motion_keys = settings_import.CAMERA_MODES.get(loaded["animation_mode"], ())
    values, notes = settings_import.property_values(
        loaded, props.UI_SETTINGS, props.NUMERIC_SCHEDULES, limits=limits,
        animated=_animated_settings(scene), camera_keys=motion_keys)
    keys = None
    if motion_keys:
        cam = _imported_camera(scene)
        lens = bpy.types.Camera.bl_rna.properties["lens"]
        keys = settings_import.camera_keys(
            loaded, scale=settings.camera_scale, height=loaded["H"],
            sensor=_sensor(scene, cam, loaded["W"], loaded["H"]),
            start=_start_pose(scene, cam), lens_range=(lens.hard_min, lens.hard_max))
        notes += keys.warnings
        if cam is not None and (cam.parent is not None or len(cam.constraints)):
            notes.append(f"camera: {cam.name!r} has a parent or constraints; the bake "
                         "includes them")
    return values, keys, notes


def _write_keys(id_, data_path: str, values: np.ndarray, first: int) -> None:
    """One LINEAR key per frame on each channel of ``data_path`` (nothing overshoots)."""
    id_.keyframe_insert(data_path, frame=first)  # creates the fcurves on any version
    columns = values.reshape(len(values), -1)
    frames = np.arange(first, first + len(values), dtype=float)
    for fc in compat.fcurves_for(id_):
        if fc.data_path != data_path:
            continue
        points = fc.keyframe_points
        points.add(len(values) - len(points))
        points.foreach_set("co", np.column_stack([frames, columns[:, fc.array_index]]).ravel())
        for point in points:
            point.interpolation = "LINEAR"
        fc.update()


def _animate_camera(scene, keys: settings_import.CameraKeys):
    """The import's camera (made once, then reused) with only these keys."""
    cam = _imported_camera(scene)
    if cam is None:
        cam = bpy.data.objects.new(CAMERA_NAME, bpy.data.cameras.new(CAMERA_NAME))
        scene.collection.objects.link(cam)
        cam[CAMERA_TAG] = True
    cam.animation_data_clear()
    cam.data.animation_data_clear()
    cam.data.type = "PERSP"
    cam.rotation_mode = "QUATERNION"
    _write_keys(cam, "location", keys.locations, scene.frame_start)
    _write_keys(cam, "rotation_quaternion", keys.quaternions, scene.frame_start)
    _write_keys(cam.data, "lens", keys.lenses, scene.frame_start)
    return cam


def _set_prompts(scene, rows) -> None:
    prompts = scene.deforum.prompts
    prompts.clear()
    for frame, prompt, negative in rows:
        row = prompts.add()
        row.frame, row.prompt, row.negative = scene.frame_start + frame, prompt, negative
    scene.deforum.prompt_index = 0


class _SettingsImport(ImportHelper):
    """Shared by the two import operators (a registered operator cannot be subclassed)."""

    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".txt"
    filter_glob: StringProperty(default="*.txt;*.json", options={"HIDDEN"})

    prompts_only = False

    def execute(self, context):
        scene = context.scene
        path = Path(self.filepath)
        try:
            loaded = load_settings(path)
            rows = settings_import.prompt_rows(loaded) \
                if "animation_prompts" in loaded.given else None
            plan = None if self.prompts_only else _plan(scene, loaded)
        except SettingsError as exc:
            text = str(exc)
            self.report({"ERROR"}, text if str(path) in text else f"{path.name}: {text}")
            return {"CANCELLED"}
        done = [f"{len(rows)} prompts" if rows is not None else "no prompts (kept the scene's)"]
        if rows is not None:
            _set_prompts(scene, rows)
        if plan is not None:
            done[:0] = self._apply(scene, loaded, *plan)
        self.report({"INFO"}, f"Imported {path.name}: {', '.join(done)}")
        return {"FINISHED"}

    def _apply(self, scene, loaded, values, keys, notes) -> list[str]:
        settings = scene.deforum
        for name, value in values.items():
            if isinstance(getattr(settings, name), str) and not isinstance(value, str):
                value = str(value)  # a whole number kept as text (the seed)
            setattr(settings, name, value)
        r = scene.render
        r.resolution_x, r.resolution_y, r.resolution_percentage = loaded["W"], loaded["H"], 100
        r.fps, r.fps_base = settings_import.fps_pair(loaded["fps"])
        scene.frame_end = scene.frame_start + loaded["max_frames"] - 1
        done = [f"{loaded['animation_mode']}, {loaded['max_frames']} frames"]
        if keys is not None:
            cam = _animate_camera(scene, keys)
            scene.camera = settings.camera = cam
            settings.use_camera = True
            done.append(f"camera {cam.name!r}")
        for note in (*loaded.warnings, *notes):
            self.report({"WARNING"}, note)
        return done


class DEFORUM_OT_import_settings(_SettingsImport, bpy.types.Operator):
    """Load a Deforum settings file (JSON; never executed) into this scene: settings,
    prompts, frame range, size, fps and, for 2D/3D, a camera that bakes back its motion"""

    bl_idname = "deforum.import_settings"
    bl_label = "Import Deforum Settings"


class DEFORUM_OT_prompts_import(_SettingsImport, bpy.types.Operator):
    """Read only the prompts of a Deforum settings file (JSON; never executed)"""

    bl_idname = "deforum.prompts_import"
    bl_label = "Import Prompts"

    prompts_only = True


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
            data = compose.compose_settings(scene, baked, prefs.get(context))
            checked = compose.validate(data)
        except (bake.BakeError, compose.RunError) as exc:
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
            ok, message = install.run_self_check(python)
            if addon_prefs is not None:
                addon_prefs.engine_status = message
            self.report({"INFO" if ok else "ERROR"}, message)
            return {"FINISHED"} if ok else {"CANCELLED"}

        def work():
            _INSTALL_STATE["check"] = install.run_self_check(python)[1]

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
        return install.install_commands(base_python(), prefs.installed_venv(), requirements_file())

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
            ok, message = install.run_self_check(str(install.venv_python(prefs.installed_venv())))
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
    DEFORUM_OT_release_engine,
    DEFORUM_OT_prompt_add,
    DEFORUM_OT_prompt_remove,
    DEFORUM_OT_import_settings,
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
