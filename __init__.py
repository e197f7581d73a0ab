"""Deforum for Blender: keyframed camera → Deforum animation → VSE strip.

The house in one sentence: the top level is what Blender registers (this file,
``operators/``, ``panels/``), ``addon/`` is the add-on's machinery inside Blender
(properties, preferences, version shims, camera bake, scene passes, VSE strip, live
preview and the run that ties them together), and ``engine/`` is everything that
runs without Blender: the Deforum engine process and, in ``engine/client/``,
Blender's end of the protocol with it. Blender imports only the engine's light
modules (numpy only), never torch.
"""

import bpy

from . import operators, panels
from .addon import prefs, props, runner

_classes = (*prefs.CLASSES, *props.CLASSES, *operators.CLASSES, *panels.CLASSES)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(_classes)


@bpy.app.handlers.persistent
def _stop_engines_on_load(*_args) -> None:
    """A loaded file starts without renders; the warm engine stays (the client stops it at exit)."""
    runner.cancel_everything()


def register() -> None:
    _register_classes()
    props.register()
    operators.register()
    bpy.app.handlers.load_pre.append(_stop_engines_on_load)


def unregister() -> None:
    if _stop_engines_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_stop_engines_on_load)
    runner.cancel_everything()
    runner.release_engine()
    operators.unregister()
    props.unregister()
    _unregister_classes()
