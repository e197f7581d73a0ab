"""Scene passes: renders of the Blender scene that the engine reads, made before it starts.

One module per pass: ``depth`` (the camera's true depth), ``colour`` (the scene's
own render, stylised by the engine), ``mask`` (one collection's coverage). Each
renders one frame per step through the bpy-free ``driver``, so the modal operator
keeps the UI responsive; ``render`` holds what they share, ``pixels`` the
bpy-free pixel maths.
"""
