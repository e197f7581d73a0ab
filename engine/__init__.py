"""Deforum animation engine.

Light modules (settings, schedules, camera) import with numpy alone so that
Blender's bundled Python can use them; heavy libraries load lazily.
"""

__version__ = "0.1.0"
