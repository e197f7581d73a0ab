import bpy
d = bpy.context.scene.deforum

d.animation_mode = '2D'
d.use_camera = False
d.zoom = 1.005
d.zoom_override = ''
d.angle = 0.3
d.angle_override = ''
d.translation_x = 0.0
d.translation_x_override = '0:(4*sin(2*3.14*t/96))'
d.translation_y = 0.0
d.translation_y_override = '0:(4*cos(2*3.14*t/96))'
