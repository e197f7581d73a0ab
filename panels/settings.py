"""The settings panels below Motion, one per settings-table group (Depth and Output
add their own rows), in their sidebar order. A group that no panel here draws (a
new one in the table) gets a panel of its own, titled from its name."""

from __future__ import annotations

import re

import bpy

from ..addon import compose, prefs, props, tidy, vse
from . import controlnet, guides, motion, prompts
from .draw import SubPanel, draw_group, group_title
from .presets import DEFORUM_MT_coherence_presets, draw_preset_row


class DEFORUM_PT_depth(SubPanel, bpy.types.Panel):
    bl_label = "Depth"
    groups = ("depth",)

    def draw(self, context):
        layout, settings = self.setup(context)
        draw_group(layout, settings, "depth")
        if compose.uses_scene_depth(settings):
            box = layout.box()
            box.label(text="Scene depth: the camera's depth is rendered (Cycles) first",
                      icon="INFO")
            box.label(text="It forces the pinhole warp and 200 units per scene unit")
            box.label(text="(Motion › Warp Model and Scale are not used)")


class DEFORUM_PT_hybrid(SubPanel, bpy.types.Panel):
    bl_label = "Hybrid Video"
    groups = ("hybrid",)

    def draw(self, context):
        layout, settings = self.setup(context)
        if settings.animation_mode not in ("2D", "3D"):
            layout.label(text="Used in the 2D and 3D animation modes", icon="INFO")
        layout.operator("deforum.scene_as_hybrid_video", icon="SCENE_DATA")
        layout.prop(settings, "hybrid_from_scene")
        draw_group(layout, settings, "hybrid")
        if compose.hybrid_follows_scene(settings) and settings.flow_source == "scene":
            box = layout.box()
            box.label(text="The scene's renders are the video and its exact motion is the "
                      "flow", icon="INFO")
            box.label(text="(both rendered first; the camera warp's own motion is taken out)")


def _group_panel(group: str, title: str, skip=(), first=(), mode="", presets=None,
                 after=None):
    """A panel of one settings-table group; ``first``: add-on options drawn above it;
    ``mode``: the animation mode it acts in (a note says so in the others);
    ``presets``: a preset menu drawn at the top; ``after``: see ``draw_group``."""
    def draw(self, context):
        layout, settings = self.setup(context)
        if presets is not None:
            draw_preset_row(layout, presets)
        if mode and settings.animation_mode != mode:
            layout.label(text=f"Used in the {mode} animation mode", icon="INFO")
        for name in first:
            layout.prop(settings, name)
        draw_group(layout, settings, group, skip, after)
    idname = "DEFORUM_PT_" + re.sub(r"\W", "_", group)
    return type(idname, (SubPanel, bpy.types.Panel),
                {"bl_label": title, "draw": draw, "groups": (group,),
                 "__doc__": f"Deforum {title} settings"})


def new_group_panels(written) -> tuple[type, ...]:
    """A panel for each top-level settings-table group that none of ``written`` draws."""
    drawn = {group for cls in written for group in getattr(cls, "groups", ())}
    tops = dict.fromkeys(group.split("/")[0] for group in props.BY_GROUP)
    return tuple(_group_panel(group, group_title(group)) for group in tops if group not in drawn)


class DEFORUM_PT_output(SubPanel, bpy.types.Panel):
    bl_label = "Output"
    groups = ("output", "run")

    def draw(self, context):
        layout, settings = self.setup(context)
        layout.prop(settings, "output_dir")
        layout.prop(settings, "batch_name")
        render = context.scene.render
        row = layout.row(align=True)
        row.label(text=f"Resolution {render.resolution_x}×{render.resolution_y}")
        for size in ("512", "768", "1024"):
            row.operator("deforum.set_resolution", text=size).size = size
        draw_group(layout, settings, "output")
        draw_group(layout, settings, "run", skip=("animation_mode", "preview_motion"))
        if settings.last_log:
            layout.prop(settings, "last_log")
        row = layout.row(align=True)
        row.operator("deforum.open_output_folder", icon="FILE_FOLDER")
        row.operator("deforum.open_log", icon="TEXT")
        _draw_takes(layout, context, settings)
        _draw_disk(layout, context, settings)


def _draw_takes(layout, context, settings) -> None:
    """Where the takes go; earlier takes stay muted below the newest."""
    box = layout.box()
    box.prop(settings, "strips_in")
    if settings.strips_in == vse.OWN:
        box.prop(settings, "sequencer_scene")
    box.label(text="A re-render keeps earlier takes, muted, below the new one", icon="INFO")
    box.label(text="Delete Take removes the active take's strip; its frames stay on disk")
    box.operator("deforum.delete_take", icon="TRASH")


def _draw_disk(layout, context, settings) -> None:
    """The output folder's disk use, as last measured on a thread (never walked here)."""
    box = layout.box()
    box.prop(settings, "keep_intermediates")
    try:
        folder = compose.output_dir(context.scene, prefs.get(context))
    except compose.RunError:
        return
    use = tidy.DISK_USE.get(folder)
    text = "Disk: measuring…" if use is None else \
        f"Disk: {tidy.human(use[0])} in the output folder, {tidy.human(use[1])} in jobs/"
    box.label(text=text, icon="DISK_DRIVE")
    box.operator("deforum.clean_up", icon="BRUSH_DATA")


_WRITTEN = (
    _group_panel("coherence", "Coherence", presets=DEFORUM_MT_coherence_presets),
    DEFORUM_PT_depth,
    _group_panel("sampling", "Sampling"),
    _group_panel("init", "Init & Mask", first=("init_from_scene",),
                 after={"use_looper": guides.draw_guides}),
    _group_panel("video", "Video Input", first=("video_from_scene", "stylise_mask"),
                 mode="Video Input"),
    DEFORUM_PT_hybrid,
    *controlnet.CLASSES,
    _group_panel("interpolation", "Interpolation", mode="Interpolation"),
)
CLASSES = (
    *_WRITTEN,
    *new_group_panels((*motion.CLASSES, *prompts.CLASSES, *_WRITTEN, DEFORUM_PT_output)),
    DEFORUM_PT_output,
)
