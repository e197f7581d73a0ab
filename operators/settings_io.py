"""Deforum settings files: import a file (all settings, or only its prompts) into the
scene, and export the scene as the settings file a render would write."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..addon import bake, compose, import_scene, prefs, settings_import
from ..engine.errors import SettingsError
from ..engine.guided import guide_paths
from ..engine.settings import Settings, effective_settings, load_settings
from .common import report_error


class _SettingsImport(ImportHelper):
    """Shared by the two import operators (a registered operator cannot be subclassed)."""

    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".txt"
    filter_glob: StringProperty(default="*.txt;*.json", options={"HIDDEN"})

    prompts_only = False

    def execute(self, context):
        return import_into_scene(self, context.scene, Path(self.filepath),
                                 lambda: load_settings(self.filepath), self.prompts_only)


def import_into_scene(op, scene, path: Path, load: Callable[[], Settings],
                      prompts_only: bool = False) -> set[str]:
    """Write the settings ``load`` returns (read from ``path``) into ``scene`` (guide
    images too, when the file has them), or only their prompts; nothing changes when
    they fail to load or plan."""
    try:
        loaded = load()
        rows = settings_import.prompt_rows(loaded) \
            if "animation_prompts" in loaded.given else None
        planned = None if prompts_only else import_scene.plan(scene, loaded)
        guides = None
        if planned is not None and "init_images" in loaded.given:
            with warnings.catch_warnings(record=True) as caught:  # keys between two frames
                warnings.simplefilter("always")
                guides = _guides(loaded, planned.notes)
            planned.notes.extend(str(w.message) for w in caught)
    except SettingsError as exc:
        text = str(exc)
        op.report({"ERROR"}, text if str(path) in text else f"{path.name}: {text}")
        return {"CANCELLED"}
    done = [f"{len(rows)} prompts" if rows is not None else "no prompts (kept the scene's)"]
    if rows is not None:
        import_scene.set_prompts(scene, rows)
    if planned is not None:
        done[:0] = import_scene.apply(scene, loaded, planned)
        if guides is not None:
            import_scene.set_guides(scene, guides)
            done.append(f"{len(guides)} guide images")
        for note in (*loaded.warnings, *planned.notes):
            op.report({"WARNING"}, note)
    op.report({"INFO"}, f"Imported {path.name}: {', '.join(done)}")
    return {"FINISHED"}


def _guides(loaded: Settings, notes: list[str]) -> list[tuple[int, str]] | None:
    """The file's guide images.  With Guided Images off they are optional: webui exports
    always carry its example ``init_images``, whose keys can fall before frame 0 in a short
    animation, so a list that cannot be read is left out with a note instead of refusing
    the whole file."""
    if loaded["use_looper"]:
        return guide_paths(loaded)
    try:
        return guide_paths(loaded)
    except SettingsError as exc:
        notes.append(f"{exc} — Guided Images is off, so the guide images were not imported")
        return None


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
            return report_error(self, scene, str(exc))
        with open(self.filepath, "w", encoding="utf-8") as handle:
            json.dump(effective_settings(checked), handle, indent=4, ensure_ascii=False)
            handle.write("\n")
        self.report({"INFO"}, f"Wrote {self.filepath}")
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_import_settings, DEFORUM_OT_prompts_import, DEFORUM_OT_settings_export)
