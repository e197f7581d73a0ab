"""Import a Parseq manifest: the scene's own settings with the manifest's per-frame
values on top, written into the scene as Import Settings writes a settings file."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..addon import bake, compose
from ..engine.errors import SettingsError
from ..engine.settings import Settings, parse_settings
from .settings_io import import_into_scene


def manifest_settings(context, scene, path: Path, use_deltas: bool,
                      non_schedule_overrides: bool) -> Settings:
    """The scene's settings (camera aside) with the manifest at ``path`` applied.

    Settings the manifest does not carry keep the scene's values; the engine's
    loader turns the carried ones into ordinary schedules and prompts.
    """
    try:
        base = compose.compose_settings(scene, bake.sample(context, scene, with_camera=False),
                                        None)
    except bake.BakeError as exc:
        raise SettingsError(str(exc)) from None
    return parse_settings({**base, "parseq_manifest": str(path),
                           "parseq_use_deltas": use_deltas,
                           "parseq_non_schedule_overrides": non_schedule_overrides},
                          source=str(path))


class DEFORUM_OT_import_parseq(bpy.types.Operator, ImportHelper):
    """Load a Parseq manifest (JSON; never fetched or executed) into this scene: its
    per-frame values become the settings, prompts and a camera that bakes back its motion"""

    bl_idname = "deforum.import_parseq"
    bl_label = "Import Parseq Manifest"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json;*.txt", options={"HIDDEN"})
    use_deltas: BoolProperty(
        name="Use Deltas", default=True,
        description="Motion from the manifest's per-frame changes (*_delta), as Deforum "
                    "expects; off: its absolute values are taken as the changes")
    non_schedule_overrides: BoolProperty(
        name="Frames, Cadence and FPS", default=True,
        description="The manifest's frame count, cadence and output fps replace the scene's")

    def execute(self, context):
        scene = context.scene
        path = Path(self.filepath)
        return import_into_scene(
            self, scene, path, lambda: manifest_settings(context, scene, path, self.use_deltas,
                                                         self.non_schedule_overrides))


CLASSES = (DEFORUM_OT_import_parseq,)
