"""Operators, one module per feature; each is a thin adapter over the machinery in
``addon/`` and the engine client. This module only gathers their classes in
registration order and adds the hooks that are not classes."""

from __future__ import annotations

import bpy

from ..addon import compat
from . import bake, engine_setup, parseq, prompts, render, settings_io

CLASSES = (
    *bake.CLASSES,
    *render.CLASSES,
    *prompts.CLASSES,
    *settings_io.CLASSES,
    *parseq.CLASSES,
    *engine_setup.CLASSES,
)


def register() -> None:
    bpy.types.STATUSBAR_HT_header.append(render.draw_status)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(render.draw_status)
    compat.timer_unregister(engine_setup.poll_background)
