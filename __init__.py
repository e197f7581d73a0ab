"""Deforum for Blender: keyframed camera → Deforum animation → VSE strip.

Blender-facing code lives in ``operators/`` and ``panels/``; the pure logic
(settings, schedules, camera math) lives in ``engine/`` and never imports
torch here — diffusion runs in a separate engine process.
"""

import bpy

from . import operators, panels

_classes = (*operators.CLASSES, *panels.CLASSES)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(_classes)


def register() -> None:
    _register_classes()


def unregister() -> None:
    _unregister_classes()
