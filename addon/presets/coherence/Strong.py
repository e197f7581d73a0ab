import bpy
d = bpy.context.scene.deforum

d.strength_schedule = 0.45
d.strength_schedule_override = ''
d.noise_schedule = 0.04
d.noise_schedule_override = ''
d.contrast_schedule = 1.0
d.contrast_schedule_override = ''
d.color_coherence = 'None'
