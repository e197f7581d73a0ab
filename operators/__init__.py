"""Operators, one module per feature; each is a thin adapter over the machinery in
``addon/`` and the engine client. This module only gathers their classes in
registration order and adds the hooks that are not classes: the status-bar progress,
the Topbar › Render entry and the Render Deforum shortcut."""

from __future__ import annotations

import bpy

from ..addon import compat, farm as farm_runs, prefs
from . import (bake, engine_setup, farm, guides, hybrid, output, parseq, presets, prompts,
               render, settings_io, takes)

CLASSES = (
    *bake.CLASSES,
    *render.CLASSES,
    *farm.CLASSES,
    *takes.CLASSES,
    *prompts.CLASSES,
    *guides.CLASSES,
    *hybrid.CLASSES,
    *settings_io.CLASSES,
    *parseq.CLASSES,
    *engine_setup.CLASSES,
    *output.CLASSES,
    *presets.CLASSES,
)

# Ctrl+Shift+F12 beside Blender's F12 (render image) and Ctrl+F12 (render animation).
SHORTCUT = {"type": "F12", "value": "PRESS", "ctrl": True, "shift": True}
_keymap_items: list = []  # (keymap, item) pairs this add-on added


def _add_shortcut() -> None:
    keyconfig = bpy.context.window_manager.keyconfigs.addon
    if keyconfig is None:  # no add-on key configuration (some background sessions)
        return
    keymap = keyconfig.keymaps.new(name="Screen", space_type="EMPTY")
    _keymap_items.append((keymap, keymap.keymap_items.new("deforum.render", **SHORTCUT)))


def register() -> None:
    bpy.types.STATUSBAR_HT_header.append(render.draw_status)
    bpy.types.TOPBAR_MT_render.append(render.draw_render_menu)
    _add_shortcut()
    prefs.check_soon()


def unregister() -> None:
    for keymap, item in _keymap_items:
        keymap.keymap_items.remove(item)
    _keymap_items.clear()
    bpy.types.TOPBAR_MT_render.remove(render.draw_render_menu)
    bpy.types.STATUSBAR_HT_header.remove(render.draw_status)
    compat.timer_unregister(farm_runs.poll)
    compat.timer_unregister(prefs.poll_background)
    compat.timer_unregister(prefs.first_check)
    prefs.INSTALLER.cancel()
