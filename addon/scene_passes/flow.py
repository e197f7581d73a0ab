"""Scene flow: where each pixel of frame k is in frame k+1, ``{k:05d}.npy`` (H×W×2),
the same step backwards (where each pixel of frame k+1 was in frame k,
``{k:05d}_back.npy``) and each frame's depth (``{k:05d}_depth.npy``).

One Cycles render per frame, the scene depth's (1 sample through each pixel
centre, the View Z Depth material override, motion blur off) with the Vector
pass on, written as an uncompressed multi-layer EXR and read by ``exr``.
Each pixel's flow is the camera's: its scene point, lifted with the rendered
depth and the evaluated camera of frames k and k±1, projected again
(``engine.camera_flow``), exact for everything that stands still; where
Blender's Vector pass (the surface's own motion into frame k+1 in Z/W, from
frame k−1 in X/Y) differs from that by over ``MOVING_PX``, the pixel shows
something that moves or deforms and takes the vector. Sky (no surface; the
Vector pass leaves it at 0) moves with the camera's turn. The backward flow
and the depth let the engine tell, where two points meet in a cadence tween,
which one is in front. The last frame has no next one, the first no previous
one. Every render setting is restored.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import bpy
import numpy as np

from ...engine.camera_flow import blender_pose, pose_flow
from ...engine.scene_flow import write_flow_depth, write_scene_flow
from .. import bake
from .depth import depth_render
from .driver import ScenePass
from .exr import plane_reader
from .pixels import backward_vectors, forward_vectors, scene_flow, sky_is_far
from .render import at_frame, exr_pass_changes, scene_pass

LABEL = "scene flow"


def read_depth_and_vectors(path: Path, width: int, height: int):
    """(depth H×W with sky at +inf, forward vectors H×W×2, backward vectors H×W×2) from
    the rendered EXR."""
    channel = plane_reader(path, width, height, "flow")
    depth = sky_is_far(channel(".Combined.R"), channel(".Combined.A"))
    return (depth, forward_vectors(channel(".Vector.Z"), channel(".Vector.W")),
            backward_vectors(channel(".Vector.X"), channel(".Vector.Y")))


def _camera(scene, frame: int, width: int, height: int):
    """(camera-to-world matrix, (fov, shift)) of the evaluated camera at ``frame``."""
    with at_frame(scene, frame):
        camera = bake.scene_camera(scene).evaluated_get(bpy.context.evaluated_depsgraph_get())
        return (np.array(camera.matrix_world, dtype=float),
                bake.lens(camera.data, scene.render, width, height))


class Direction(NamedTuple):
    """One direction's flow and what it is made of (H×W×2 flows, H×W mask)."""

    flow: np.ndarray
    static: np.ndarray   # the camera's flow over the rendered depth
    vectors: np.ndarray  # Blender's Vector pass, as a flow to that frame
    moving: np.ndarray   # where the flow is the vector's


class FlowFrame(NamedTuple):
    """A frame's flows to the next and the previous frame, and its depth (+inf: sky)."""

    ahead: Direction
    back: Direction
    depth: np.ndarray


def flow_frame(scene, frame: int, k: int, folder: str | Path) -> FlowFrame:
    """The flows of Blender frame ``frame`` → frame ± 1, with their parts."""
    width, height = bake.render_size(scene)
    (prev, prev_lens), (here, lens), (new, new_lens) = (
        _camera(scene, f, width, height) for f in (frame - 1, frame, frame + 1))
    (depth, ahead, back), _, _ = depth_render(scene, frame, k, Path(folder),
                                              exr_pass_changes(scene, "use_pass_vector"),
                                              read=read_depth_and_vectors)

    def direction(vectors: np.ndarray, other: np.ndarray, other_lens) -> Direction:
        static = pose_flow(depth, *blender_pose(here, other), lens, other_lens)
        flow, moving = scene_flow(static, vectors, depth)
        return Direction(flow, static, vectors, moving)
    return FlowFrame(direction(ahead, new, new_lens), direction(back, prev, prev_lens), depth)


def render_flow_frame(scene, frame: int, k: int, folder: str | Path) -> Path:
    """Blender frame ``frame``'s depth, its flow into the next frame (but on the last) and
    the previous step's backward flow (but on the first), into ``folder``."""
    flows = flow_frame(scene, frame, k, folder)
    if k > 0:
        write_scene_flow(folder, k - 1, flows.back.flow, back=True)
    if frame < scene.frame_end:
        write_scene_flow(folder, k, flows.ahead.flow)
    return write_flow_depth(folder, k, flows.depth)


def flow_pass(scene, folder: str | Path) -> ScenePass:
    """Flow files for every frame of the scene range (see the module's docstring)."""
    return scene_pass(scene, folder, LABEL, render_flow_frame, "flow_source")
