import bpy
d = bpy.context.scene.deforum

d.animation_mode = '2D'
d.use_camera = False
d.zoom = 1.0
d.zoom_override = ''
d.angle = 0.0
d.angle_override = ''
d.translation_x = 3.0
d.translation_x_override = ''
d.translation_y = 0.0
d.translation_y_override = ''
