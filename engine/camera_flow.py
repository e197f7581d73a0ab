"""The optical flow a static scene shows while the camera moves, from its true depth.

Each pixel of the first picture is lifted to its scene point with the
picture's depth (along the view axis), carried into the second camera and
projected there; the flow is where it lands minus where it was, in pixels
(x right, y down), for the pixel centres.  Camera axes are the pinhole warp's
(x right, y down, z forward); a pose step is ``p_new = A·p_old + b``.  Numpy
only: the Blender add-on computes the static part of its scene flow with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .units import TRANSLATION_SCALE

Lens = tuple[float, tuple[float, float]]  # (vertical fov in degrees, lens shift fractions)
_FLIP = np.diag([1.0, -1.0, -1.0])  # Blender camera axes (y up, z back) ⇄ ours


def _rotation_xyz(rx: float, ry: float, rz: float) -> np.ndarray:
    """Rx·Ry·Rz from degrees, the rotation of the warp's pose step."""
    (ca, sa), (cb, sb), (cc, sc) = ((math.cos(math.radians(v)), math.sin(math.radians(v)))
                                    for v in (rx, ry, rz))
    return (np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
            @ np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
            @ np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]]))


def _intrinsics(lens: Lens, width: int, height: int) -> tuple[float, float, float, float]:
    """(focal x, focal y, principal x, principal y) in normalised picture units (−1…1)."""
    fov, (shift_x, shift_y) = lens
    fy = 1.0 / math.tan(math.radians(fov) / 2.0)
    return fy * height / width, fy, -2.0 * shift_x, 2.0 * shift_y


def pose_flow(depth: np.ndarray, rotation: np.ndarray, offset: Sequence[float], old: Lens,
              new: Lens) -> np.ndarray:
    """H×W×2 float32 flow of the pixels of a picture with ``depth`` when the camera moves
    by ``p_new = rotation·p_old + offset``; ``old``/``new`` are each camera's lens.

    Points that end behind the new camera get no flow (0): nothing there to follow."""
    height, width = depth.shape
    fx0, fy0, cx0, cy0 = _intrinsics(old, width, height)
    fx1, fy1, cx1, cy1 = _intrinsics(new, width, height)
    u = (2.0 * np.arange(width) + 1.0) / width - 1.0
    v = (2.0 * np.arange(height) + 1.0) / height - 1.0
    z = np.minimum(np.asarray(depth, np.float64), 1e10)
    point = np.stack(np.broadcast_arrays((u[None, :] - cx0) / fx0 * z,
                                         (v[:, None] - cy0) / fy0 * z, z), axis=-1)
    moved = point @ np.asarray(rotation, np.float64).T + np.asarray(offset, np.float64)
    ahead = moved[..., 2] > 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (fx1 * moved[..., 0] / moved[..., 2] + cx1 - u[None, :]) * width / 2.0
        y = (fy1 * moved[..., 1] / moved[..., 2] + cy1 - v[:, None]) * height / 2.0
    flow = np.stack([np.where(ahead, x, 0.0), np.where(ahead, y, 0.0)], axis=-1)
    return flow.astype(np.float32)


def step_flow(depth: np.ndarray, step: Mapping[str, Any],
              scale: float = TRANSLATION_SCALE) -> np.ndarray:
    """The flow of one Deforum 3D step (``Motion.camera_step`` of the new frame: translation,
    rotation, fov, prev_fov, shift, prev_shift) for the previous frame's ``depth``;
    ``scale`` schedule units are one depth unit.  It inverts the pinhole warp's step."""
    tx, ty, tz = (v / scale for v in step["translation"])
    inverse = _rotation_xyz(*step["rotation"]).T
    prev_fov = step["prev_fov"] if step.get("prev_fov") is not None else step["fov"]
    prev_shift = step.get("prev_shift") or step.get("shift", (0.0, 0.0))
    return pose_flow(depth, inverse, (-tx, ty, -tz), (prev_fov, prev_shift),
                     (step["fov"], step.get("shift", (0.0, 0.0))))


def step_back_flow(depth: np.ndarray, step: Mapping[str, Any],
                   scale: float = TRANSLATION_SCALE) -> np.ndarray:
    """The flow of the same step backwards, from the new frame (with its ``depth``) to the
    previous one: ``step_flow``'s pose step undone."""
    tx, ty, tz = (v / scale for v in step["translation"])
    rotation = _rotation_xyz(*step["rotation"])
    prev_fov = step["prev_fov"] if step.get("prev_fov") is not None else step["fov"]
    prev_shift = step.get("prev_shift") or step.get("shift", (0.0, 0.0))
    return pose_flow(depth, rotation, -rotation @ np.array([-tx, ty, -tz]),
                     (step["fov"], step.get("shift", (0.0, 0.0))), (prev_fov, prev_shift))


def blender_pose(old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rotation, offset) of the pose step between two Blender camera-to-world matrices."""
    def split(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        linear = np.asarray(matrix, np.float64)[:3, :3]
        return linear / np.linalg.norm(linear, axis=0), np.asarray(matrix, np.float64)[:3, 3]
    r_old, t_old = split(old)
    r_new, t_new = split(new)
    return _FLIP @ r_new.T @ r_old @ _FLIP, _FLIP @ r_new.T @ (t_old - t_new)
