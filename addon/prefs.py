"""Add-on preferences: which Python runs the engine, models, device, output folder."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from ..engine.client import install

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


class DeforumPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON

    engine_python: StringProperty(
        name="Engine Python", subtype="FILE_PATH",
        description="Python interpreter with the engine's requirements (torch, diffusers). "
                    "Empty: $DEFORUM_ENGINE_PYTHON, a .venv beside the engine, or the venv "
                    "made by Install Engine")
    model_path: StringProperty(
        name="Model", subtype="FILE_PATH",
        description="Stable Diffusion checkpoint: diffusers folder or .safetensors/.ckpt. "
                    "Empty: renders the motion preview")
    depth_model_path: StringProperty(
        name="Depth Model", subtype="DIR_PATH",
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
    engine_status: StringProperty(name="Engine status", default="")

    def draw(self, context):
        layout = self.layout
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
        for line in INSTALLER.tail():  # drawn from memory, nothing fallible
            col.label(text=line)
        col.separator()
        col.prop(self, "model_path")
        col.prop(self, "depth_model_path")
        col.prop(self, "device")
        col.prop(self, "half_precision")
        col.prop(self, "default_output_dir")
        row = col.row(align=True)
        row.prop(self, "keep_engine_warm")
        row.operator("deforum.release_engine", icon="UNLINKED")


CLASSES = (DeforumPreferences,)
