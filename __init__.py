"""Deforum for Blender: keyframed camera → Deforum animation → VSE strip.

Layout (blender-reference §5): ``props`` (scene.deforum, generated from the
engine's settings table), ``prefs`` (engine Python, models), ``operators/``
and ``panels/`` (Blender-facing), ``runner`` (one render run), ``job`` (the
engine process, no bpy), ``bake``/``bake_math`` (camera sampling → schedules),
``vse`` (strips), ``compat`` (every Blender-version switch). ``engine/`` is
the engine itself: Blender imports only its light modules (numpy only) and
never torch; diffusion runs in a separate engine process.
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
