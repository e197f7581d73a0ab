"""Scene depth: the camera's view-axis depth for every frame, ``{k:05d}.npy``.

The cheapest route that is exact and works on bpy 4.2, 4.5 and 5.0 without the
compositor (5.0 replaced ``scene.node_tree``): Cycles, 1 sample, a 0.01 px box
filter (the one ray goes through the pixel centre, as the warp assumes), no
denoising, and a temporary view-layer material override whose emission strength
is Camera Data › View Z Depth (depth along the view axis, not ray length). The
film is transparent, so rays that hit nothing (alpha 0) become far depth (+inf),
never 0. The frame is written as a float32 EXR, read back through
``bpy.data.images`` and saved as float16 with ``engine.depth.write_scene_depth``
(engine frame k = Blender frame start + k): half the disk of float32, and the
same warp to within a fraction of a pixel (``tests/engine/test_depth.py``).

Measured with bpy 5.0.1 on a shared 2-CPU machine: about 50 ms/frame at 512×512
(70 ms under load; a cube and a plane, 8 frames; frame_set, render, EXR round
trip and .npy included).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import bpy
import numpy as np

from ...engine.depth import write_scene_depth
from .. import bake, compat
from .driver import ScenePass
from .pixels import depth_from_rgba
from .render import (Change, at_frame, frame_changes, read_rgba, render, scene_pass, temporarily,
                     view_layer)

LABEL = "scene depth"


def _depth_material():
    """Emission = View Z Depth (white), so the render's R channel is metric planar depth."""
    material = compat.node_material("Deforum Scene Depth")
    tree = material.node_tree
    tree.nodes.clear()
    camera = tree.nodes.new("ShaderNodeCameraData")
    emission = tree.nodes.new("ShaderNodeEmission")
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    emission.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    tree.links.new(camera.outputs["View Z Depth"], emission.inputs["Strength"])
    tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
    return material


def _depth_changes(scene, layer, material) -> list[Change]:
    r, cycles, image = scene.render, scene.cycles, scene.render.image_settings
    cam = bake.scene_camera(scene)
    changes = [(r, "engine", "CYCLES"), (r, "use_motion_blur", False),
               (r, "film_transparent", True), (r, "use_compositing", False),
               (cycles, "samples", 1), (cycles, "use_adaptive_sampling", False),
               (cycles, "use_denoising", False), (cycles, "pixel_filter_type", "BOX"),
               (cycles, "filter_width", 0.01), (cycles, "film_exposure", 1.0),
               (cycles, "sample_clamp_direct", 0.0), (cycles, "max_bounces", 0),
               (cam.data.dof, "use_dof", False), (scene, "world", None),
               (layer, "material_override", material)]
    if hasattr(layer, "samples"):  # a per-layer sample count overrides the scene's
        changes.append((layer, "samples", 0))
    return changes + compat.image_format_changes(image, "OPEN_EXR") + [
        (image, "color_mode", "RGBA"), (image, "color_depth", "32"),
        (image, "exr_codec", "ZIP")]


def depth_render(scene, frame: int, k: int, folder: Path, extra: Sequence[Change] = (),
                 read=read_rgba):
    """(bottom-up RGBA floats, W, H) of the depth render of Blender frame ``frame``;
    ``read(exr, W, H)`` replaces how the rendered file is read (``extra`` may add passes)."""
    if not hasattr(scene, "cycles"):  # the Cycles add-on registers scene.cycles
        raise RuntimeError("scene depth needs Cycles, which is not available in this Blender")
    folder.mkdir(parents=True, exist_ok=True)
    width, height = bake.render_size(scene)
    exr = folder / f".{k:05d}.render.exr"
    layer = view_layer(scene)
    material = _depth_material()
    try:
        changes = frame_changes(scene, width, height, exr) + \
            _depth_changes(scene, layer, material) + list(extra)
        with temporarily(changes), at_frame(scene, frame):
            render(scene, layer.name)
        pixels = read(exr, width, height)
    finally:
        bpy.data.materials.remove(material)
        exr.unlink(missing_ok=True)
    return pixels, width, height


def render_depth_frame(scene, frame: int, k: int, folder: str | Path) -> Path:
    """Blender frame ``frame``'s view-axis depth as ``{folder}/{k:05d}.npy``."""
    pixels, width, height = depth_render(scene, frame, k, Path(folder))
    return write_scene_depth(folder, k, depth_from_rgba(pixels, width, height),
                             dtype=np.float16)  # half the disk; see write_scene_depth


def depth_pass(scene, folder: str | Path) -> ScenePass:
    """Depth maps ``{folder}/{k:05d}.npy`` for every frame of the scene range."""
    return scene_pass(scene, folder, LABEL, render_depth_frame, "depth_source")
