"""Scene flow: where each pixel of frame k is in frame k+1, ``{k:05d}.npy`` (H×W×2).

One Cycles render per frame, the scene depth's (1 sample through each pixel
centre, the View Z Depth material override, motion blur off) with the Vector
pass on, written as an uncompressed multi-layer EXR and read by ``exr``.
Each pixel's flow is the camera's: its scene point, lifted with the rendered
depth and the evaluated camera of frames k and k+1, projected again
(``engine.camera_flow``), exact for everything that stands still; where
Blender's Vector pass (the surface's own motion into frame k+1) differs from
that by over ``MOVING_PX``, the pixel shows something that moves or deforms
and takes the vector. Sky (no surface; the Vector pass leaves it at 0) moves
with the camera's turn. The last
frame has no next one and gets no file. Every render setting is restored.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import bpy
import numpy as np

from ...engine.camera_flow import blender_pose, pose_flow
from ...engine.scene_flow import write_scene_flow
from .. import bake, compat
from .depth import depth_render
from .driver import ScenePass
from .exr import read_channels
from .pixels import FAR, forward_vectors, scene_flow
from .render import Change, at_frame, scene_pass, view_layer

LABEL = "scene flow"


def _vector_changes(scene) -> list[Change]:
    """The depth render's settings plus the Vector pass, all passes in one plain EXR."""
    image = scene.render.image_settings
    return [(view_layer(scene), "use_pass_vector", True)] + \
        compat.multilayer_exr_changes(image) + [
            (image, "color_depth", "32"), (image, "exr_codec", "NONE")]


def read_depth_and_vectors(path: Path, width: int, height: int):
    """(depth H×W with sky at +inf, forward vectors H×W×2) from the rendered EXR."""
    channels = read_channels(path)

    def channel(suffix: str) -> np.ndarray:
        found = [name for name in channels if name.endswith(suffix)]
        if not found:
            raise RuntimeError(f"the render has no {suffix[1:]} channel")
        plane = channels[found[0]].astype(np.float32)
        if plane.shape != (height, width):
            raise RuntimeError(f"the flow render is {plane.shape[::-1]}, expected "
                               f"{(width, height)}")
        return plane
    depth = channel(".Combined.R")
    depth[channel(".Combined.A") < 0.5] = FAR
    return depth, forward_vectors(channel(".Vector.Z"), channel(".Vector.W"))


def _camera(scene, frame: int, width: int, height: int):
    """(camera-to-world matrix, (fov, shift)) of the evaluated camera at ``frame``."""
    with at_frame(scene, frame):
        camera = bake.scene_camera(scene).evaluated_get(bpy.context.evaluated_depsgraph_get())
        return (np.array(camera.matrix_world, dtype=float),
                bake.lens(camera.data, scene.render, width, height))


class FlowFrame(NamedTuple):
    """One step's flow and what it is made of (H×W×2 flows, H×W masks and depth)."""

    flow: np.ndarray
    static: np.ndarray   # the camera's flow over the rendered depth
    vectors: np.ndarray  # Blender's Vector pass, as a flow to the next frame
    moving: np.ndarray   # where the flow is the vector's
    depth: np.ndarray    # +inf where no surface is hit


def flow_frame(scene, frame: int, k: int, folder: str | Path) -> FlowFrame:
    """The flow of Blender frame ``frame`` → frame + 1, with its parts."""
    width, height = bake.render_size(scene)
    (old, old_lens), (new, new_lens) = (_camera(scene, f, width, height)
                                        for f in (frame, frame + 1))
    (depth, vectors), _, _ = depth_render(scene, frame, k, Path(folder), _vector_changes(scene),
                                          read=read_depth_and_vectors)
    static = pose_flow(depth, *blender_pose(old, new), old_lens, new_lens)
    flow, moving = scene_flow(static, vectors, depth)
    return FlowFrame(flow, static, vectors, moving, depth)


def render_flow_frame(scene, frame: int, k: int, folder: str | Path) -> Path:
    """The flow of Blender frame ``frame`` into the next as ``{folder}/{k:05d}.npy``."""
    return write_scene_flow(folder, k, flow_frame(scene, frame, k, folder).flow)


def flow_pass(scene, folder: str | Path) -> ScenePass:
    """Flow files ``{folder}/{k:05d}.npy`` for every frame of the scene range but the last."""
    return scene_pass(scene, folder, LABEL, render_flow_frame, "flow_source",
                      frames=range(scene.frame_start, scene.frame_end))
