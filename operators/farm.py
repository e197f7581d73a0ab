"""Submit to Farm and Collect: the scene's shots as a render plan on a Ray cluster, this
machine or an OpenJD bundle, and the finished shots as strips in the VSE."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..addon import compose, farm, runner
from .common import report_error


class DEFORUM_OT_submit_farm(bpy.types.Operator):
    """Write a render plan of this scene's shots (and variations) and submit it"""

    bl_idname = "deforum.submit_farm"
    bl_label = "Submit to Farm"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return farm.ACTIVE is None or farm.ACTIVE.finished

    def execute(self, context):
        try:
            plan_path = farm.write_plan(context)
            started = farm.start(context, plan_path)
        except compose.RunError as exc:
            report_error(self, context.scene, str(exc))
            return {"CANCELLED"}
        message = started if isinstance(started, str) else \
            f"plan {plan_path.name} running ({context.scene.deforum.farm_backend.lower()}); " \
            f"log: {started.log_path}"
        runner.inform(context.scene, "Deforum: " + message)
        self.report({"INFO"}, "Deforum: " + message)
        return {"FINISHED"}


class DEFORUM_OT_collect_farm(bpy.types.Operator):
    """Put the finished shots of the last plan in the Video Sequence Editor"""

    bl_idname = "deforum.collect_farm"
    bl_label = "Collect"

    @classmethod
    def poll(cls, context):
        return bool(context.scene.deforum.farm_plan)

    def execute(self, context):
        path = Path(bpy.path.abspath(context.scene.deforum.farm_plan))
        try:
            placed, waiting = farm.collect(context, path)
        except (OSError, ValueError) as exc:
            report_error(self, context.scene, f"farm_plan: {path}: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Deforum: {placed} shots collected, {waiting} not finished")
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_submit_farm, DEFORUM_OT_collect_farm)
