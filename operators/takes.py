"""Takes and disk: delete one take's strip, clean up the job scratch no take uses."""

from __future__ import annotations

import bpy

from ..addon import compose, prefs, runner, tidy, vse
from .common import report_error


def active_take(context):
    """(scene, strip) of the active strip when it is a Deforum take, else (None, None):
    in the scene's strips scene, else in the scene itself (e.g. from the Sequencer)."""
    scene = context.scene
    candidates = (vse.strips_scene(context, scene, create=False), scene)
    for owner_scene in candidates:
        sed = owner_scene.sequence_editor if owner_scene is not None else None
        strip = sed.active_strip if sed is not None else None
        if strip is not None and strip.get(vse.OWNER):
            return owner_scene, strip
    return None, None


class DEFORUM_OT_delete_take(bpy.types.Operator):
    """Remove the active take's strip from the sequencer (its frames stay on disk); the
    newest take left is unmuted"""

    bl_idname = "deforum.delete_take"
    bl_label = "Delete Take"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return active_take(context)[1] is not None

    def execute(self, context):
        owner_scene, strip = active_take(context)
        if strip is None:
            return report_error(self, context.scene, "Delete Take: the active strip is not "
                                                     "a Deforum take")
        name = vse.delete_take(owner_scene, strip)
        self.report({"INFO"}, f"Deforum: deleted take {name!r} from scene "
                              f"{owner_scene.name!r}; its frames stay on disk")
        return {"FINISHED"}


class DEFORUM_OT_clean_up(bpy.types.Operator):
    """Delete the job scratch (depth maps, scene renders, masks) in the output folder's
    jobs/ that no take in any scene uses; frames are never deleted"""

    bl_idname = "deforum.clean_up"
    bl_label = "Clean Up"
    bl_options = {"REGISTER"}

    def execute(self, context):
        scene = context.scene
        try:
            jobs_dir = compose.output_dir(scene, prefs.get(context)) / "jobs"
        except compose.RunError as exc:
            return report_error(self, scene, str(exc))
        keep = vse.used_jobs()
        run = runner.running()
        if run is not None:
            keep.add(str(run.settings_path))
        try:
            removed, freed = tidy.clean_up(jobs_dir, keep)
        except OSError as exc:
            return report_error(self, scene, f"Clean Up: {exc}")
        tidy.DISK_USE.forget()
        self.report({"INFO"}, f"Deforum: removed {removed} scratch folder(s)/file(s), "
                              f"{tidy.human(freed)}, from {jobs_dir}")
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_delete_take, DEFORUM_OT_clean_up)
