"""Engine set-up from the preferences: check the engine's Python, install the engine
into a venv. Both run in ``prefs.INSTALLER``'s background thread; a timer copies the
outcome into the preferences' status line."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import bpy
from bpy.props import BoolProperty

from ..addon import compat, prefs, runner
from ..engine.client import install, job


def poll_background() -> float | None:
    """Timer: copy the outcome of a background check/install into the preferences."""
    addon_prefs = prefs.get()
    if addon_prefs is not None:
        result = prefs.INSTALLER.take_result()
        if result is not None:
            addon_prefs.engine_status = result
    runner.redraw()
    return 0.5 if prefs.INSTALLER.busy() else None


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
        if addon_prefs is not None:
            addon_prefs.engine_status = f"Checking {python or '(no engine Python)'}…"
        prefs.INSTALLER.check(python)
        compat.timer_register(poll_background, first_interval=0.5)
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
        if prefs.INSTALLER.busy():
            self.report({"WARNING"}, "an engine install or check is already running")
            return {"CANCELLED"}
        log_path = prefs.user_dir("logs") / "install-engine.log"
        prefs.INSTALLER.install(commands, log_path,
                                install.venv_python(prefs.installed_venv()))
        if bpy.app.background:
            prefs.INSTALLER.join()
            poll_background()
        else:
            compat.timer_register(poll_background, first_interval=0.5)
        self.report({"INFO"}, f"Installing the engine into {prefs.installed_venv()} "
                              f"(log: {log_path})")
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_check_engine, DEFORUM_OT_install_engine)
