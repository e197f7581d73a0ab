"""Pure helpers between sampled Blender values and Deforum schedule strings (no bpy).

The 3D camera convention itself lives in ``engine.camera``; this module only
adds the 2D mapping and the writing of sampled property values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..engine.camera import (format_number, format_schedule, matrices_to_motion,
                            matrices_to_schedules)
from ..engine.settings_table import camera_keys


def schedule_from_values(values: Sequence[float]) -> str:
    """A constant as ``0:(v)``; anything that varies as one key per frame."""
    if not len(values):
        raise ValueError("no values to write")
    first = values[0]
    if all(v == first for v in values):
        return f"0:({format_number(first)})"
    return format_schedule(values)


def motion_2d(motion: dict, height: float) -> dict[str, list[float]]:
    """Deforum 2D values from the per-frame 3D camera motion (``matrices_to_motion``).

    * roll → ``angle``: ``rotation_3d_z`` (both mean: content turns
      counter-clockwise, camera rolls clockwise);
    * lens zoom → ``zoom`` = tan(fov₍k−1₎/2) / tan(fov₍k₎/2) (> 1 zooms in);
    * pan / tilt → ``translation_x/y`` in pixels: the image shift of a
      rotation by θ is f·tan θ with f = (H/2)/tan(fov/2); panning left moves
      the content right (2D +x), tilting up moves it down (2D +y).
    Camera travel (truck, pedestal, dolly) has no 2D equivalent without depth
    and is not mapped; use 3D mode for it.
    """
    fov = [float(v) for v in motion["fov"]]
    out: dict[str, list[float]] = {key: [0.0] * len(fov) for key in camera_keys("2D")}
    out["zoom"][0] = 1.0
    for k in range(1, len(fov)):
        focal = (height / 2.0) / math.tan(math.radians(fov[k]) / 2.0)
        out["angle"][k] = float(motion["rotation_3d_z"][k])
        out["zoom"][k] = math.tan(math.radians(fov[k - 1]) / 2.0) / \
            math.tan(math.radians(fov[k]) / 2.0)
        out["translation_x"][k] = -focal * math.tan(math.radians(motion["rotation_3d_y"][k]))
        out["translation_y"][k] = focal * math.tan(math.radians(motion["rotation_3d_x"][k]))
    return out


def camera_schedules(matrices, fovs: Sequence[float], *, mode: str, scale: float,
                     height: float,
                     shifts: Sequence[tuple[float, float]] = ()) -> dict[str, str]:
    """Schedules for ``mode`` ('2D' or '3D') from sampled camera matrices and fovs.

    In 3D a lens shift (per frame, fractions of the picture) that is not zero
    everywhere becomes ``lens_shift_x/y``, which the pinhole warp follows.
    """
    if mode == "2D":
        motion = matrices_to_motion(matrices, fovs, scale=scale)
        return {key: format_schedule(values)
                for key, values in motion_2d(motion, height).items()}
    schedules = matrices_to_schedules(matrices, fovs, scale=scale)
    if any(x or y for x, y in shifts):
        schedules["lens_shift_x"] = schedule_from_values([x for x, _ in shifts])
        schedules["lens_shift_y"] = schedule_from_values([y for _, y in shifts])
    return schedules
