import bpy
d = bpy.context.scene.deforum

d.strength_schedule = 0.8
d.strength_schedule_override = ''
d.noise_schedule = 0.01
d.noise_schedule_override = ''
d.contrast_schedule = 1.0
d.contrast_schedule_override = ''
d.color_coherence = 'Match Frame 0 LAB'
