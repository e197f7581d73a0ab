import bpy
d = bpy.context.scene.deforum

d.steps = 15
d.diffusion_cadence = 3
d.sampler = 'euler_ancestral'
d.scale = 7.0
d.strength_schedule = 0.6
d.strength_schedule_override = ''
d.noise_schedule = 0.02
d.noise_schedule_override = ''
