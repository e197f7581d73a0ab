"""ControlNet control images from the scene's geometry: depth, normals and line art,
``{k:05d}.png`` per frame at the job's W×H.

One Cycles render per frame, the scene depth's (1 sample through each pixel centre,
the View Z Depth material override, transparent film, motion blur off) with Blender's
Normal pass on, written as an uncompressed multi-layer EXR and read by ``exr``: the
true view-axis depth (sky: +inf) and the world-space shading normal of what each pixel
shows (smooth or flat as the mesh is shaded; the material override leaves out the
materials' bump and normal maps). The camera's evaluated rotation at that frame turns
the normals into camera space; ``control_pixels`` makes the images in the conventions
ControlNet models were trained on. Every render setting is restored after each frame.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import bpy
import numpy as np

from .. import bake
from . import control_pixels
from .depth import depth_render
from .driver import ScenePass
from .exr import plane_reader
from .pixels import sky_is_far
from .png import write_png
from .render import at_frame, exr_pass_changes, scene_pass

DEPTH, NORMAL, LINEART = "DEPTH", "NORMAL", "LINEART"


class Geometry(NamedTuple):
    """What a frame's camera sees: depth (H×W, +inf: sky) and camera-space unit normals
    (H×W×3, x right, y up, z toward the camera)."""

    depth: np.ndarray
    normals: np.ndarray


def _read(path: Path, width: int, height: int):
    """(depth with sky at +inf, world normals H×W×3) from the rendered EXR."""
    channel = plane_reader(path, width, height, "geometry")
    depth = sky_is_far(channel(".Combined.R"), channel(".Combined.A"))
    normals = np.stack([channel(f".Normal.{axis}") for axis in "XYZ"], axis=-1)
    return depth, normals


def _camera_matrix(scene, frame: int) -> np.ndarray:
    with at_frame(scene, frame):
        camera = bake.scene_camera(scene).evaluated_get(bpy.context.evaluated_depsgraph_get())
        return np.array(camera.matrix_world, dtype=float)


def geometry_frame(scene, frame: int, k: int, folder: str | Path) -> Geometry:
    """Blender frame ``frame``'s depth and camera-space normals."""
    rotation = _camera_matrix(scene, frame)
    (depth, world), _, _ = depth_render(scene, frame, k, Path(folder),
                                        exr_pass_changes(scene, "use_pass_normal"), read=_read)
    return Geometry(depth, control_pixels.camera_normals(world, rotation))


def _image(kind: str, geometry: Geometry) -> np.ndarray:
    if kind == DEPTH:
        return control_pixels.depth_image(geometry.depth)
    if kind == NORMAL:
        return control_pixels.normal_image(geometry.normals, np.isfinite(geometry.depth))
    return control_pixels.line_art(geometry.depth, geometry.normals)


def renderer(kind: str) -> Callable[[object, int, int, str | Path], Path]:
    """The step of a ``kind`` pass: Blender frame → ``{folder}/{k:05d}.png``."""
    def render_frame(scene, frame: int, k: int, folder: str | Path) -> Path:
        image = _image(kind, geometry_frame(scene, frame, k, folder))
        return write_png(Path(folder) / f"{k:05d}.png", image)
    return render_frame


LABELS = {DEPTH: "ControlNet depth", NORMAL: "ControlNet normals", LINEART: "ControlNet line art"}


def geometry_pass(scene, folder: str | Path, kind: str, setting: str) -> ScenePass:
    """``kind`` (``DEPTH``, ``NORMAL``, ``LINEART``) images for every frame of the range;
    ``setting`` is named in its errors."""
    return scene_pass(scene, folder, LABELS[kind], renderer(kind), setting)
