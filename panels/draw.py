"""Drawing helpers shared by the sidebar panels: one setting row, one settings-table
group, and the base classes that put a panel in the 3D Viewport's "Deforum" tab.

The setting rows are drawn from the settings table's groups, so a new row in
``engine/settings_table.py`` shows up in its panel without edits here; a group
``parent/part`` is a box inside its parent's panel.
"""

from __future__ import annotations

from ..addon import props, relevance

# Settings a panel draws in its own place, so their group's generic list skips them.
SHOWN_ELSEWHERE = {"animation_mode", "preview_motion", "batch_name", "warp_model",
                   "padding_mode", "sampling_mode"}


def draw_setting(layout, settings, name: str, state=None) -> None:
    """One setting, greyed where it cannot act (``state``: ``relevance.snapshot``); a
    numeric schedule gets its animatable value and its raw override."""
    acts = relevance.acts(name, state if state is not None else relevance.snapshot(settings))
    if name in props.NUMERIC_SCHEDULES:
        col = layout.column(align=True)
        col.active = acts
        override = getattr(settings, name + "_override")
        row = col.row(align=True)
        row.active = not override
        row.prop(settings, name)
        col.prop(settings, name + "_override", text="Schedule", icon="TEXT")
    else:
        row = layout.row()
        row.active = acts
        row.prop(settings, name)


def group_title(group: str) -> str:
    """What a panel or box of a settings-table group is called: its last part, in words
    (``coherence/anti-blur`` → "Anti-Blur")."""
    return group.rsplit("/", 1)[-1].replace("_", " ").title()


def sub_groups(group: str) -> list[str]:
    """The groups named ``group/<part>``, in table order: drawn as boxes inside its panel."""
    return [g for g in props.BY_GROUP if g.rsplit("/", 1)[0] == group and g != group]


def draw_group(layout, settings, group: str, skip=(), after=None) -> None:
    """Every setting of a settings-table group but ``skip`` and those drawn elsewhere, then
    each of its sub-groups in a box of its own; ``after``: setting name → a drawing of
    the add-on's own (``draw(layout, settings)``) that goes right below that setting."""
    state = relevance.snapshot(settings)
    after = after or {}
    for setting in props.BY_GROUP.get(group, ()):
        if setting.name not in skip and setting.name not in SHOWN_ELSEWHERE:
            draw_setting(layout, settings, setting.name, state)
        if setting.name in after:
            after[setting.name](layout, settings)
    for sub in sub_groups(group):
        box = layout.box()
        box.label(text=group_title(sub))
        draw_group(box, settings, sub, skip, after)


class DeforumPanel:
    """Where every Deforum panel lives, and the layout they share."""

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


class SubPanel(DeforumPanel):
    """A closed-by-default panel under the main Deforum panel."""

    bl_parent_id = "DEFORUM_PT_render"
    bl_options = {"DEFAULT_CLOSED"}
