"""3D Viewport sidebar, tab "Deforum". Drawing only reads values: nothing here can fail.

The setting rows are drawn from the settings table's groups, so a new row in
``engine/settings_table.py`` shows up in its panel without edits here.
"""

from __future__ import annotations

import bpy

from ..addon import compose, prefs, props, runner
from ..engine.client import warm

MOTION_3D = ("translation_x", "translation_y", "translation_z", "rotation_3d_x",
             "rotation_3d_y", "rotation_3d_z", "fov", "lens_shift_x", "lens_shift_y",
             "near_plane", "far_plane")
MOTION_2D = ("angle", "zoom", "translation_x", "translation_y", "border",
             "flip_2d_perspective", "perspective_flip_theta", "perspective_flip_phi",
             "perspective_flip_gamma", "perspective_flip_fv")
SHOWN_ELSEWHERE = {"animation_mode", "preview_motion", "batch_name", "warp_model",
                   "padding_mode", "sampling_mode"}


def draw_setting(layout, settings, name: str) -> None:
    """One setting; a numeric schedule gets its animatable value and its raw override."""
    if name in props.NUMERIC_SCHEDULES:
        col = layout.column(align=True)
        override = getattr(settings, name + "_override")
        row = col.row(align=True)
        row.active = not override
        row.prop(settings, name)
        col.prop(settings, name + "_override", text="Schedule", icon="TEXT")
    else:
        layout.prop(settings, name)


def draw_group(layout, settings, group: str, skip=()) -> None:
    for setting in props.BY_GROUP.get(group, ()):
        if setting.name not in skip and setting.name not in SHOWN_ELSEWHERE:
            draw_setting(layout, settings, setting.name)


class DeforumPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Deforum"

    @classmethod
    def poll(cls, context):
        return getattr(context.scene, "deforum", None) is not None

    def setup(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = True  # keyframe diamonds
        return layout, context.scene.deforum


class DEFORUM_PT_render(DeforumPanel, bpy.types.Panel):
    bl_label = "Deforum"
    bl_idname = "DEFORUM_PT_render"

    def draw(self, context):
        layout, settings = self.setup(context)
        run = runner.running()
        if run is None:
            layout.operator("deforum.render", icon="RENDER_ANIMATION")
            addon_prefs = prefs.get(context)
            if warm.server_pid() is not None or (addon_prefs and addon_prefs.keep_engine_warm):
                layout.operator("deforum.release_engine", icon="UNLINKED")
        else:
            factor, text = run.progress()
            layout.progress(factor=factor, type="BAR", text=text)
            if run.job.frames:
                layout.label(text=f"Last frame: {run.job.frames[-1].path}", icon="IMAGE_DATA")
            layout.operator("deforum.cancel", icon="CANCEL")
        layout.prop(settings, "animation_mode")
        layout.prop(settings, "preview_motion")
        layout.prop(settings, "live_strip")
        if settings.status:
            box = layout.box()
            box.label(text=settings.status, icon="ERROR" if settings.status_error else "INFO")
            if settings.status_error and settings.last_log:
                box.label(text=f"Log: {settings.last_log}")


class _Sub(DeforumPanel):
    bl_parent_id = "DEFORUM_PT_render"
    bl_options = {"DEFAULT_CLOSED"}


class DEFORUM_UL_prompts(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.prop(item, "frame", text="", emboss=False)
        row.prop(item, "prompt", text="", emboss=False)


class DEFORUM_PT_prompts(_Sub, bpy.types.Panel):
    bl_label = "Prompts"
    bl_options = set()

    def draw(self, context):
        layout, settings = self.setup(context)
        row = layout.row()
        row.template_list("DEFORUM_UL_prompts", "", settings, "prompts", settings,
                          "prompt_index", rows=3)
        col = row.column(align=True)
        col.operator("deforum.prompt_add", icon="ADD", text="")
        col.operator("deforum.prompt_remove", icon="REMOVE", text="")
        if 0 <= settings.prompt_index < len(settings.prompts):
            item = settings.prompts[settings.prompt_index]
            layout.prop(item, "frame")
            layout.prop(item, "prompt")
            layout.prop(item, "negative")
        layout.operator("deforum.prompts_import", icon="TEXT")
        row = layout.row(align=True)
        row.operator("deforum.import_settings", icon="IMPORT", text="Import Settings")
        row.operator("deforum.settings_export", icon="EXPORT", text="Export Settings")
        draw_group(layout, settings, "prompts")


class DEFORUM_PT_motion(_Sub, bpy.types.Panel):
    bl_label = "Motion"
    bl_options = set()

    def draw(self, context):
        layout, settings = self.setup(context)
        layout.prop(settings, "use_camera")
        col = layout.column()
        col.active = settings.use_camera
        col.prop(settings, "camera")
        scene_depth = compose.uses_scene_depth(settings)
        sub = col.column()
        sub.active = not scene_depth  # scene depth bakes at 200 units per scene unit
        sub.prop(settings, "camera_scale")
        col.operator("deforum.bake_camera", icon="CAMERA_DATA")
        mode = settings.animation_mode
        if mode == "3D":
            sub = layout.column()
            sub.active = not scene_depth  # scene depth forces the pinhole warp
            sub.prop(settings, "warp_model")
            layout.prop(settings, "padding_mode")
            layout.prop(settings, "sampling_mode")
        keys = MOTION_3D if mode == "3D" else MOTION_2D if mode == "2D" else ()
        box = layout.box()
        box.label(text="Schedules (the camera replaces the motion keys)"
                  if settings.use_camera else "Schedules")
        for name in keys:
            draw_setting(box, settings, name)


class DEFORUM_PT_depth(_Sub, bpy.types.Panel):
    bl_label = "Depth"

    def draw(self, context):
        layout, settings = self.setup(context)
        draw_group(layout, settings, "depth")
        if compose.uses_scene_depth(settings):
            box = layout.box()
            box.label(text="Scene depth: the camera's depth is rendered (Cycles) first",
                      icon="INFO")
            box.label(text="It forces the pinhole warp and 200 units per scene unit")
            box.label(text="(Motion › Warp Model and Scale are not used)")


def _group_panel(group: str, title: str, skip=(), first=()):
    """A panel of one settings-table group; ``first``: add-on options drawn above it."""
    def draw(self, context):
        layout, settings = self.setup(context)
        for name in first:
            layout.prop(settings, name)
        draw_group(layout, settings, group, skip)
    return type(f"DEFORUM_PT_{group}", (_Sub, bpy.types.Panel),
                {"bl_label": title, "draw": draw, "__doc__": f"Deforum {title} settings"})


class DEFORUM_PT_output(_Sub, bpy.types.Panel):
    bl_label = "Output"

    def draw(self, context):
        layout, settings = self.setup(context)
        layout.prop(settings, "output_dir")
        layout.prop(settings, "batch_name")
        draw_group(layout, settings, "output")
        draw_group(layout, settings, "run", skip=("animation_mode", "preview_motion"))
        if settings.last_log:
            layout.prop(settings, "last_log")


CLASSES = (
    DEFORUM_UL_prompts,
    DEFORUM_PT_render,
    DEFORUM_PT_prompts,
    DEFORUM_PT_motion,
    _group_panel("coherence", "Coherence"),
    DEFORUM_PT_depth,
    _group_panel("sampling", "Sampling"),
    _group_panel("init", "Init & Mask", first=("init_from_scene",)),
    _group_panel("video", "Video Input", first=("video_from_scene", "stylise_mask")),
    DEFORUM_PT_output,
)
