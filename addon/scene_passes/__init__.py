"""Scene passes: renders of the Blender scene that the engine reads, made before it starts.

One module per pass: ``depth`` (the camera's true depth), ``colour`` (the scene's
own render, stylised by the engine), ``mask`` (one collection's coverage), ``flow``
(the exact motion of every pixel), and the ControlNet control images: ``geometry``
(depth, normals and line art, three readings of one render) and ``pose`` (armatures
as OpenPose skeletons; ``mask`` serves the mask source). Each
renders one frame per step through the bpy-free ``driver``, so the modal operator
keeps the UI responsive; ``render`` holds what they share, ``pixels``,
``control_pixels`` and ``openpose`` the bpy-free pixel maths, ``png`` the PNG writer.
"""
