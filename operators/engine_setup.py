"""Engine set-up from the preferences: check the engine's Python (and the models it would
load), install the engine into a venv with the torch build that fits this machine, cancel
that install. Both run in ``prefs.INSTALLER``'s background thread; a timer copies the
outcome into the preferences' status line."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import bpy
from bpy.props import BoolProperty

from ..addon import compat, prefs
from ..engine.client import install, job


class DEFORUM_OT_check_engine(bpy.types.Operator):
    """Run the engine's self-check (versions, device, whether the models load) and show it"""

    bl_idname = "deforum.check_engine"
    bl_label = "Check Engine"

    def execute(self, context):
        addon_prefs = prefs.get(context)
        python = prefs.engine_python(addon_prefs)
        if bpy.app.background:
            prefs.INSTALLER.check(python, prefs.model_path(addon_prefs),
                                  prefs.depth_model_path(addon_prefs))
            prefs.INSTALLER.join()
            ok, message = install.summary(prefs.INSTALLER.report)
            prefs.INSTALLER.take_result()
            if addon_prefs is not None:
                addon_prefs.engine_status = message
            self.report({"INFO" if ok else "ERROR"}, message)
            return {"FINISHED"} if ok else {"CANCELLED"}
        if not prefs.start_check(addon_prefs):
            self.report({"WARNING"}, "an engine install or check is already running")
            return {"CANCELLED"}
        if addon_prefs is not None:
            addon_prefs.engine_status = f"Checking {python or '(no engine Python)'}…"
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

    @classmethod
    def description(cls, context, properties):
        plan = prefs.install_plan()
        return (f"Create a venv in the add-on's user folder and download the engine's "
                f"pinned requirements into it: {plan.label} and diffusers, "
                f"{plan.size_text} from the internet")

    def commands(self) -> list[list[str]]:
        return install.install_commands(base_python(), prefs.installed_venv(),
                                        requirements_file(), prefs.install_plan())

    def invoke(self, context, event):
        if not compat.online_access():
            return self.execute(context)  # the polite refusal, no dialog first
        return context.window_manager.invoke_props_dialog(self, width=480)

    def draw(self, context):
        plan = prefs.install_plan()
        col = self.layout.column(align=True)
        col.label(text=f"Downloads {plan.label}", icon="IMPORT")
        col.label(text=f"and the engine's other packages: {plan.size_text} in all")
        col.label(text=f"Into {prefs.installed_venv()}")
        col.label(text="Takes minutes; Blender stays usable, Cancel stops it")

    def execute(self, context):
        if not requirements_file().is_file():
            self.report({"ERROR"}, f"requirements.txt not found in {job.engine_root()}")
            return {"CANCELLED"}
        commands = self.commands()
        if self.dry_run:
            plan = prefs.install_plan()
            self.report({"INFO"}, f"would download {plan.label}, {plan.size_text}")
            for cmd in commands:
                self.report({"INFO"}, " ".join(cmd))
            return {"FINISHED"}
        if not compat.online_access():
            self.report({"ERROR"}, "Install Engine downloads packages from the internet, and "
                                   "Blender's online access is off: turn on Preferences › "
                                   "System › Network › Allow Online Access, or set Engine "
                                   "Python to an interpreter you installed yourself")
            return {"CANCELLED"}
        if prefs.INSTALLER.busy():
            self.report({"WARNING"}, "an engine install or check is already running")
            return {"CANCELLED"}
        log_path = prefs.user_dir("logs") / "install-engine.log"
        prefs.INSTALLER.install(commands, log_path,
                                install.venv_python(prefs.installed_venv()))
        if bpy.app.background:
            prefs.INSTALLER.join()
            prefs.poll_background()
        else:
            compat.timer_register(prefs.poll_background, first_interval=0.5)
        self.report({"INFO"}, f"Installing the engine into {prefs.installed_venv()} "
                              f"(log: {log_path})")
        return {"FINISHED"}


class DEFORUM_OT_cancel_install(bpy.types.Operator):
    """Stop the running engine install (the pip that is downloading is terminated)"""

    bl_idname = "deforum.cancel_install"
    bl_label = "Cancel Install"

    @classmethod
    def poll(cls, context):
        return prefs.INSTALLER.installing()

    def execute(self, context):
        prefs.INSTALLER.cancel()
        self.report({"INFO"}, "Deforum: stopping the engine install…")
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_check_engine, DEFORUM_OT_install_engine, DEFORUM_OT_cancel_install)
