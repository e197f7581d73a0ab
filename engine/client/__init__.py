"""Blender's end of the protocol with the engine process: start a job (one process,
or the warm server), read its JSON-lines events, cancel it; install and check the
engine's Python. Imports no bpy and no torch, so the add-on loads it inside Blender
and the tests run it without Blender."""
