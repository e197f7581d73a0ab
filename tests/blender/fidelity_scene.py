"""Scene-depth fidelity: does warping frame i with true depth reproduce Blender's frame i+1?

Shared by tests/test_scene_fidelity.py (asserts) and benchmarks/bench_fidelity.py
(prints the table). Needs bpy with the add-on enabled (tests.blender.helpers.Addon).

A small scene of emission-only objects (noise-free, smooth low-frequency
procedural colours, so a pixel's value is the texture at its centre up to
antialiasing) is rendered with Cycles by the add-on's own ``scene_passes``
passes: colour frames and depth maps. Each camera move is one realistic
per-frame step between two keyframed frames; the add-on's bake (scale 200)
gives the Deforum motion, and frame i warped into i+1 is compared with the
rendered frame i+1 on the pixels both frames see.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy
import cv2
import numpy as np
from mathutils import Matrix, Vector

from engine.depth import read_scene_depth
from engine.schedules import evaluate_schedule
from engine.warp import disocclusion_mask, warp_3d
from tests.blender.helpers import ADDON

SIZE = (160, 120)
SAMPLES = 64  # colour antialiasing; emission only, so nothing else is noisy
TARGET = Vector((0.0, 0.0, 1.0))
HOME = Vector((0.0, -8.0, 1.6))
LENS = 35.0
MOTION = ("translation_x", "translation_y", "translation_z",
          "rotation_3d_x", "rotation_3d_y", "rotation_3d_z")


def look_at(position: Vector, target: Vector = TARGET) -> Matrix:
    rotation = (target - position).to_track_quat("-Z", "Y").to_matrix().to_4x4()
    return Matrix.Translation(position) @ rotation


def _local(matrix: Matrix, axis: str, angle_deg: float) -> Matrix:
    return matrix @ Matrix.Rotation(math.radians(angle_deg), 4, axis)


def _world_turn(matrix: Matrix, angle_deg: float, pivot: Vector) -> Matrix:
    turn = (Matrix.Translation(pivot) @ Matrix.Rotation(math.radians(angle_deg), 4, "Z")
            @ Matrix.Translation(-pivot))
    return turn @ matrix


HOME_MATRIX = look_at(HOME)


@dataclass
class Move:
    """The camera one frame after HOME: pose, lens, and Blender lens shift before/after."""

    matrix: Matrix
    lens: float = LENS
    shift: tuple[float, float] = (0.0, 0.0)
    home_shift: tuple[float, float] = (0.0, 0.0)


ARCHITECTURAL = (0.05, 0.12)  # a shifted lens, as for upright verticals
MOVES: dict[str, Move] = {
    "dolly": Move(HOME_MATRIX @ Matrix.Translation((0.0, 0.0, -0.15))),
    "truck": Move(HOME_MATRIX @ Matrix.Translation((0.10, 0.0, 0.0))),
    "pedestal": Move(Matrix.Translation((0.0, 0.0, 0.08)) @ HOME_MATRIX),
    "pan": Move(_world_turn(HOME_MATRIX, 1.5, HOME)),
    "tilt": Move(_local(HOME_MATRIX, "X", 1.0)),
    "roll": Move(_local(HOME_MATRIX, "Z", 2.0)),
    "orbit": Move(_world_turn(HOME_MATRIX, 2.0, TARGET)),
    "zoom": Move(HOME_MATRIX, LENS * 1.06),
    "dolly, shifted lens": Move(HOME_MATRIX @ Matrix.Translation((0.0, 0.0, -0.15)),
                                shift=ARCHITECTURAL, home_shift=ARCHITECTURAL),
    "lens shift": Move(HOME_MATRIX, shift=(0.02, -0.015)),
}


def _emission_material(name: str, low, high, scale: float):
    """Emission coloured by a single-octave noise in object space (smooth, low frequency)."""
    material = bpy.data.materials.new(name)
    if material.node_tree is None:
        material.use_nodes = True
    tree = material.node_tree
    tree.nodes.clear()
    coords = tree.nodes.new("ShaderNodeTexCoord")
    noise = tree.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale
    noise.inputs["Detail"].default_value = 0.0
    ramp = tree.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].position, ramp.color_ramp.elements[1].position = 0.3, 0.7
    ramp.color_ramp.elements[0].color = (*low, 1.0)
    ramp.color_ramp.elements[1].color = (*high, 1.0)
    emission = tree.nodes.new("ShaderNodeEmission")
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    tree.links.new(coords.outputs["Object"], noise.inputs["Vector"])
    tree.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    tree.links.new(ramp.outputs["Color"], emission.inputs["Color"])
    tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
    return material


def _box(scene, name: str, vertices_min, vertices_max, material):
    (x0, y0, z0), (x1, y1, z1) = vertices_min, vertices_max
    verts = [(x, y, z) for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts, [], faces)
    mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    return obj


def _sphere(scene, name: str, centre, radius: float, material):
    mesh = bpy.data.meshes.new(name)
    rings, segments = 24, 48
    verts = [(0.0, 0.0, radius)]
    for i in range(1, rings):
        theta = math.pi * i / rings
        for j in range(segments):
            phi = 2.0 * math.pi * j / segments
            verts.append((radius * math.sin(theta) * math.cos(phi),
                          radius * math.sin(theta) * math.sin(phi), radius * math.cos(theta)))
    verts.append((0.0, 0.0, -radius))
    faces = [(0, 1 + (j + 1) % segments, 1 + j) for j in range(segments)]
    for i in range(rings - 2):
        a, b = 1 + i * segments, 1 + (i + 1) * segments
        faces += [(a + j, a + (j + 1) % segments, b + (j + 1) % segments, b + j)
                  for j in range(segments)]
    last, bottom = 1 + (rings - 2) * segments, len(verts) - 1
    faces += [(last + j, last + (j + 1) % segments, bottom) for j in range(segments)]
    mesh.from_pydata(verts, [], faces)
    for polygon in mesh.polygons:
        polygon.use_smooth = True
    mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = centre
    scene.collection.objects.link(obj)
    return obj


def build_scene():
    """The scene and its camera, every move keyframed: move m spans frames 2m+1 → 2m+2."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.render.resolution_x, scene.render.resolution_y = SIZE
    scene.render.resolution_percentage = 100
    scene.render.dither_intensity = 0.0
    scene.view_settings.view_transform = "Standard"
    scene.cycles.samples = SAMPLES
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    world = bpy.data.worlds.new("Sky")
    if world.node_tree is None:
        world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.35, 0.5, 0.8, 1.0)
    scene.world = world

    _box(scene, "Ground", (-30, -20, -0.1), (30, 9, 0),
         _emission_material("Ground", (0.15, 0.25, 0.1), (0.45, 0.55, 0.25), 0.15))
    _box(scene, "Wall", (-30, 9, 0), (30, 10, 5),
         _emission_material("Wall", (0.5, 0.35, 0.3), (0.8, 0.65, 0.45), 0.25))
    _box(scene, "Crate", (-2.2, -1.5, 0), (-0.8, 0.0, 1.4),
         _emission_material("Crate", (0.55, 0.4, 0.15), (0.8, 0.6, 0.3), 0.6))
    _box(scene, "Pillar", (1.8, 3.0, 0), (2.6, 3.8, 3.0),
         _emission_material("Pillar", (0.4, 0.4, 0.5), (0.65, 0.65, 0.75), 0.5))
    _sphere(scene, "Ball", (0.9, -2.5, 0.7), 0.7,
            _emission_material("Ball", (0.6, 0.25, 0.25), (0.85, 0.5, 0.4), 0.8))

    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    for m, move in enumerate(MOVES.values()):
        for frame, pose, focal, shift in ((2 * m + 1, HOME_MATRIX, LENS, move.home_shift),
                                          (2 * m + 2, move.matrix, move.lens, move.shift)):
            cam.matrix_world = pose
            cam.data.lens = focal
            cam.data.shift_x, cam.data.shift_y = shift
            cam.keyframe_insert("location", frame=frame)
            cam.keyframe_insert("rotation_euler", frame=frame)
            for key in ("lens", "shift_x", "shift_y"):
                cam.data.keyframe_insert(key, frame=frame)
    scene.frame_start, scene.frame_end = 1, 2 * len(MOVES)
    scene.frame_set(1)
    return scene, cam


@dataclass
class Row:
    move: str
    pinhole: float          # PSNR dB, pinhole warp with frame i+1's depth (what the engine does)
    pinhole_prev: float     # pinhole warp with frame i's depth instead
    deforum: float          # Deforum's formula with the same depth
    covisible: float        # share of pixels both frames see


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.mean(diff ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def measure(folder: Path | None = None) -> list[Row]:
    """Render, bake and warp every move of ``build_scene()``'s scene; one Row per move."""
    import sys

    passes = f"{ADDON}.addon.scene_passes"
    bake = sys.modules[f"{ADDON}.addon.bake"]
    scene = bpy.context.scene
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(folder or tmp)
        for scene_pass in (sys.modules[f"{passes}.colour"].colour_pass(scene, root / "colour"),
                           sys.modules[f"{passes}.depth"].depth_pass(scene, root / "depth")):
            scene_pass.run()
            if scene_pass.error:
                raise RuntimeError(scene_pass.error)
        scene.deforum.animation_mode = "3D"
        baked = bake.sample(bpy.context, scene, scale=200.0)
        motion = {key: evaluate_schedule(baked.camera_schedules[key], baked.frames)
                  for key in MOTION + ("fov", "lens_shift_x", "lens_shift_y")}
        rows = []
        for m, name in enumerate(MOVES):
            k = 2 * m + 1  # engine frame of the move's second frame
            images = [cv2.imread(str(root / "colour" / f"{i:05d}.png"))[..., ::-1]
                      for i in (k - 1, k)]
            depths = [read_scene_depth(str(root / "depth"), i) for i in (k - 1, k)]
            step = {"translation": tuple(motion[key][k] for key in MOTION[:3]),
                    "rotation": tuple(motion[key][k] for key in MOTION[3:]),
                    "fov": motion["fov"][k], "prev_fov": motion["fov"][k - 1],
                    "shift": (motion["lens_shift_x"][k], motion["lens_shift_y"][k]),
                    "prev_shift": (motion["lens_shift_x"][k - 1],
                                   motion["lens_shift_y"][k - 1])}
            covisible = ~disocclusion_mask(depths[0], depths[1], **step)

            def score(depth, model):
                warped = warp_3d(images[0], depth, warp_model=model, **step)
                return psnr(warped, images[1], covisible)

            rows.append(Row(name, score(depths[1], "pinhole"), score(depths[0], "pinhole"),
                            score(depths[1], "deforum"), float(covisible.mean())))
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| move | pinhole, scene depth (dB) | pinhole, previous frame's depth (dB) | "
             "deforum, scene depth (dB) | co-visible |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r.move} | {r.pinhole:.2f} | {r.pinhole_prev:.2f} | {r.deforum:.2f} | "
              f"{100 * r.covisible:.1f} % |" for r in rows]
    return "\n".join(lines)


# --- scene flow: a camera move and a moving object, keyed linearly over frames 1…3 ------

FLOW_SIZE = (96, 72)
BALL_STEP = Vector((0.12, -0.05, 0.04))  # the ball's own motion per frame (scene units)
CAMERA_STEP = Vector((0.08, 0.0, 0.03))  # the camera's travel per frame
PAN_STEP = 0.8                           # and its turn about Z, degrees per frame


def build_flow_scene(size=FLOW_SIZE, samples: int = 16):
    """``build_scene()``'s set with the camera trucking, rising and panning and the ball
    moving on its own, both linearly over frames 1…3 (frame 2 is the true in-between)."""
    scene, cam = build_scene()
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.cycles.samples = samples
    cam.animation_data_clear()
    cam.data.animation_data_clear()
    cam.data.lens, cam.data.shift_x, cam.data.shift_y = LENS, 0.0, 0.0
    ball = scene.objects["Ball"]
    start = ball.location.copy()
    edit = bpy.context.preferences.edit
    kept, edit.keyframe_new_interpolation_type = edit.keyframe_new_interpolation_type, "LINEAR"
    try:
        for frame in (1, 2, 3):
            step = frame - 1
            cam.matrix_world = _world_turn(look_at(HOME + CAMERA_STEP * step), PAN_STEP * step,
                                           HOME + CAMERA_STEP * step)
            cam.keyframe_insert("location", frame=frame)
            cam.keyframe_insert("rotation_euler", frame=frame)
            ball.location = start + BALL_STEP * step
            ball.keyframe_insert("location", frame=frame)
    finally:
        edit.keyframe_new_interpolation_type = kept
    scene.frame_start, scene.frame_end = 1, 3
    scene.frame_set(1)
    return scene, cam, ball


def pixel_rays(scene, cam, pixels):
    """World-space (origin, direction) of the rays through the centres of ``pixels`` (row,
    column) of the current frame's camera (lens shift and sensor fit included)."""
    width, height = scene.render.resolution_x, scene.render.resolution_y
    top_right, bottom_right, bottom_left, top_left = cam.data.view_frame(scene=scene)
    origin = cam.matrix_world.translation
    rays = []
    for row, col in pixels:
        u, v = (col + 0.5) / width, (row + 0.5) / height
        local = top_left.lerp(top_right, u).lerp(bottom_left.lerp(bottom_right, u), v)
        rays.append((origin, (cam.matrix_world @ local) - origin))
    return rays


def true_flow(scene, cam, ball, pixels, frame: int, step: int = 1) -> np.ndarray:
    """Independent ground truth of the flow ``frame`` → ``frame + step`` (1: the next
    frame, −1: the previous) at ``pixels``: each pixel's ray hits the scene
    (``scene.ray_cast``), the point moves with the ball when it is on the ball, and
    Blender projects it into that frame's camera."""
    from bpy_extras.object_utils import world_to_camera_view

    width, height = scene.render.resolution_x, scene.render.resolution_y
    scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    hits = []
    for origin, direction in pixel_rays(scene, cam, pixels):
        hit, location, _, _, obj, _ = scene.ray_cast(depsgraph, origin, direction)
        hits.append(location + BALL_STEP * step if hit and obj.name == ball.name else
                    location if hit else None)
    scene.frame_set(frame + step)
    flow = np.full((len(pixels), 2), np.nan)
    for n, ((row, col), point) in enumerate(zip(pixels, hits)):
        if point is not None:
            x, y, _ = world_to_camera_view(scene, cam, point)
            flow[n] = (x * width - 0.5 - col, (1.0 - y) * height - 0.5 - row)
    scene.frame_set(1)
    return flow
