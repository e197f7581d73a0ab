"""3D Viewport sidebar, tab "Deforum", one module per panel (``draw`` holds the shared
helpers). Drawing only reads values: nothing here can fail. This module gathers the
classes in registration order: the main panel before its sub-panels, which appear in
the sidebar in this order."""

from __future__ import annotations

from . import guides, motion, presets, prompts, render, settings

CLASSES = (
    *presets.CLASSES,
    *render.CLASSES,
    *prompts.CLASSES,
    *guides.CLASSES,
    *motion.CLASSES,
    *settings.CLASSES,
)
