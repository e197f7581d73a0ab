import bpy
d = bpy.context.scene.deforum

d.steps = 50
d.diffusion_cadence = 1
d.sampler = 'dpmpp_2m_karras'
d.scale = 7.0
d.strength_schedule = 0.65
d.strength_schedule_override = ''
d.noise_schedule = 0.02
d.noise_schedule_override = ''
d.color_coherence = 'Match Frame 0 LAB'
