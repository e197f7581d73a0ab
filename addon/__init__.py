"""The add-on's machinery inside Blender: scene properties and preferences, version
shims, the camera bake, scene passes, the VSE strip, live preview and the run that
ties them together. The modules that touch bpy are imported by Blender only; the
pure ones (``bake_math``, ``settings_import``, ``scene_passes.driver``, ``.pixels``)
are tested without it.
"""
