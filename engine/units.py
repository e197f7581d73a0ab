"""Units shared by the camera math, the warp and the add-on's bake.

Deforum divides its translation schedules by 200 before moving the picture, so
200 schedule units are one unit of the warp's depth; with metric depth (Blender's
scene depth and the pinhole warp) that unit is one scene unit (a metre).
"""

TRANSLATION_SCALE = 200.0  # Deforum translation units per scene unit
