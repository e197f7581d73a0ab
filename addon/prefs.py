"""Add-on preferences: which Python runs the engine, models, device, output folder, and
the first-run checklist drawn from the last background self-check."""

from __future__ import annotations

import functools
import os
import platform
import sys
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from ..engine.client import checklist, install
from . import compat, setup_ui

# The add-on's module: "bl_ext.<repo>.<id>" as an extension, the folder name otherwise.
ADDON = __package__.rpartition(".")[0]

# The engine check/install running in the background: the operators start it, the
# preferences draw its output.
INSTALLER = install.Installer()


def get(context=None):
    """This add-on's preferences (None while it is not enabled)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON)
    return addon.preferences if addon else None


def user_dir(name: str, create: bool = True) -> Path:
    """A writable folder of this add-on outside the add-on folder."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON, path=name, create=create))
    except ValueError:  # loaded as a legacy add-on (not an extension)
        path = Path(bpy.utils.user_resource("SCRIPTS", path="deforum_blender")) / name
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path


def installed_venv(create: bool = False) -> Path:
    """Where Install Engine puts the engine's venv (in the add-on's user folder)."""
    return user_dir("engine-venv", create=create)


def engine_python(prefs) -> str:
    """The engine interpreter: the preference, else a detected one, else ''."""
    if prefs is not None and prefs.engine_python:
        return bpy.path.abspath(prefs.engine_python)
    try:
        extra = (installed_venv(),)
    except Exception:  # noqa: BLE001 - no user folder: just no candidate
        extra = ()
    return install.default_engine_python(extra=extra)


def model_path(addon_prefs) -> str:
    """The diffusion model: the preference, else $DEFORUM_MODEL (headless and farm
    renders), else '' (the motion preview)."""
    if addon_prefs is not None and addon_prefs.model_path:
        return bpy.path.abspath(addon_prefs.model_path)
    return os.environ.get("DEFORUM_MODEL", "")


def depth_model_path(addon_prefs) -> str:
    return bpy.path.abspath(addon_prefs.depth_model_path) if addon_prefs is not None and \
        addon_prefs.depth_model_path else ""


def checklist_items(addon_prefs) -> list[checklist.Item]:
    """The first-run checklist from the last self-check (never runs one)."""
    return checklist.checklist(INSTALLER.report, python=engine_python(addon_prefs),
                               model=model_path(addon_prefs),
                               depth_model=depth_model_path(addon_prefs))


@functools.cache
def install_plan() -> install.InstallPlan:
    """The torch build Install Engine would download on this machine (found once)."""
    return install.install_plan(sys.platform, platform.machine(), install.has_nvidia_gpu())


def _redraw() -> None:
    for window in getattr(bpy.context.window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES"}:
                area.tag_redraw()


def poll_background() -> float | None:
    """Timer: copy the outcome of a background check/install into the preferences."""
    addon_prefs = get()
    if addon_prefs is not None:
        result = INSTALLER.take_result()
        if result is not None:
            addon_prefs.engine_status = result
    _redraw()
    return 0.5 if INSTALLER.busy() else None


def start_check(addon_prefs) -> bool:
    """Rerun the self-check in the background (False while a check or install runs)."""
    if INSTALLER.busy():
        return False
    INSTALLER.check(engine_python(addon_prefs), model_path(addon_prefs),
                    depth_model_path(addon_prefs))
    compat.timer_register(poll_background, first_interval=0.5)
    return True


def first_check() -> None:
    """Timer, once after registration: the checklist's first background check."""
    addon_prefs = get()
    if addon_prefs is not None and INSTALLER.report is None:
        start_check(addon_prefs)


def check_soon() -> None:
    """With a UI, check the engine once soon after registration (the checklist fills in)."""
    if not bpy.app.background:
        compat.timer_register(first_check, first_interval=1.0)


def _recheck(self, context) -> None:
    """A changed interpreter or model: the checklist checks it again (with a UI)."""
    if not bpy.app.background:
        start_check(self)


class DeforumPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON

    engine_python: StringProperty(
        name="Engine Python", subtype="FILE_PATH", update=_recheck,
        description="Python interpreter with the engine's requirements (torch, diffusers). "
                    "Empty: $DEFORUM_ENGINE_PYTHON, a .venv beside the engine, or the venv "
                    "made by Install Engine")
    model_path: StringProperty(
        name="Model", subtype="FILE_PATH", update=_recheck,
        description="Stable Diffusion 1.x/2.x/SDXL checkpoint: .safetensors/.ckpt file or "
                    "diffusers folder. Empty: $DEFORUM_MODEL, else the motion preview")
    depth_model_path: StringProperty(
        name="Depth Model", subtype="DIR_PATH", update=_recheck,
        description="Local depth model folder (DPT or Depth Anything); empty: flat depth")
    device: EnumProperty(
        name="Device", default="auto",
        items=[("auto", "Auto", "CUDA, else Apple MPS, else CPU"), ("cuda", "CUDA", ""),
               ("mps", "MPS", "Apple Silicon"), ("cpu", "CPU", "")])
    half_precision: BoolProperty(name="Half Precision", default=True,
                                 description="fp16 on CUDA (CPU always uses fp32)")
    default_output_dir: StringProperty(
        name="Default Output Folder", subtype="DIR_PATH",
        description="Used when a scene has no output folder (never inside the add-on folder)")
    keep_engine_warm: BoolProperty(
        name="Keep Engine Warm", default=True,
        description="Keep one engine process running between renders, with its models "
                    "loaded, so the next render starts at once (Release Engine frees its "
                    "memory). Off: one engine process per render")
    engine_threads: IntProperty(
        name="Engine CPU Threads", default=0, min=0, soft_max=64,
        description="CPU threads of the engine's torch and OpenCV. 0: the cores the machine "
                    "leaves idle when a render starts, so Blender and scene passes keep "
                    "theirs")
    engine_status: StringProperty(name="Engine status", default="")

    def draw(self, context):
        layout = self.layout
        setup_ui.draw_checklist(layout, checklist_items(self), busy=INSTALLER.busy())
        layout.use_property_split = True
        col = layout.column()
        col.prop(self, "engine_python")
        detected = engine_python(self)
        if not self.engine_python:
            col.label(text=f"Detected: {detected}" if detected else
                      "No engine found: set Engine Python or press Install Engine",
                      icon="INFO" if detected else "ERROR")
        row = col.row(align=True)
        row.operator("deforum.check_engine", icon="CHECKMARK")
        row.operator("deforum.install_engine", icon="IMPORT")
        if self.engine_status:
            col.label(text=self.engine_status)
        setup_ui.draw_install(col, INSTALLER, install_plan())
        col.separator()
        col.prop(self, "model_path")
        if not self.model_path and os.environ.get("DEFORUM_MODEL"):
            col.label(text=f"Using $DEFORUM_MODEL: {os.environ['DEFORUM_MODEL']}", icon="INFO")
        setup_ui.draw_model_guidance(col)
        col.prop(self, "depth_model_path")
        col.prop(self, "device")
        col.prop(self, "half_precision")
        col.prop(self, "engine_threads")
        col.prop(self, "default_output_dir")
        row = col.row(align=True)
        row.prop(self, "keep_engine_warm")
        row.operator("deforum.release_engine", icon="UNLINKED")


CLASSES = (DeforumPreferences,)
