"""Sample the evaluated scene per frame: camera matrices, true fov, schedule properties."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import bake_math, props
from ..engine.camera import shift_fractions, vertical_fov
from ..engine.schedules import MAX_KEYS, MAX_SCHEDULE_CHARS

# The most frames a bake can write, a key each: a schedule holds MAX_KEYS keys and each
# takes at least 8 characters ("k:(v), "), so a longer range is refused before sampling.
MAX_BAKED_FRAMES = min(MAX_KEYS, MAX_SCHEDULE_CHARS // 8)


class BakeError(ValueError):
    """A reason the scene cannot be baked, naming what to fix."""


@dataclass
class Bake:
    start: int                       # Blender frame of Deforum frame 0
    frames: int                      # number of frames
    matrices: np.ndarray             # (N, 4, 4) camera-to-world
    fovs: list[float]                # true vertical fov per frame
    values: dict[str, list[float]]   # every numeric schedule property per frame
    camera_schedules: dict[str, str]  # the motion keys of the mode


def _camera_markers(scene) -> list:
    """The timeline markers that bind a camera, in frame order."""
    return sorted((m for m in scene.timeline_markers if m.camera), key=lambda m: m.frame)


def camera_at(scene, frame: int):
    """The camera Blender shows at ``frame``: the last marker at or before it that binds
    one, else (before every such marker) the earliest marker's, else the scene camera.

    Blender switches ``scene.camera`` itself on frame change, so reading it directly
    would follow whichever camera the current frame happens to show."""
    bound = _camera_markers(scene)
    if not bound:
        return scene.camera
    before = [m.camera for m in bound if m.frame <= frame]
    return before[-1] if before else bound[0].camera


def followed_camera(scene):
    """The object the render follows, unchecked (None when there is none): the chosen
    camera, else the one the scene shows at its first frame."""
    return scene.deforum.camera or camera_at(scene, scene.frame_start)


def scene_camera(scene):
    """The camera the render follows, refused by name unless it is a perspective camera."""
    cam = followed_camera(scene)
    if cam is None:
        raise BakeError("camera: the scene has no camera; add one or choose it in "
                        "Deforum › Motion")
    if cam.type != "CAMERA":
        raise BakeError(f"camera: {cam.name!r} is not a camera")
    if cam.data.type != "PERSP":
        kind = {"ORTHO": "orthographic", "PANO": "panoramic"}.get(cam.data.type,
                                                               cam.data.type.lower())
        raise BakeError(f"camera: {cam.name!r} is {kind}; Deforum needs a perspective camera "
                        "(Camera properties › Lens › Type: Perspective)")
    return cam


def camera_switches(scene, cam) -> list[tuple[int, str]]:
    """(frame, camera name) of each timeline marker in the scene's range that binds
    another camera: Blender cuts to it there, the bake keeps following ``cam``."""
    switches, shown = [], camera_at(scene, scene.frame_start)
    for m in _camera_markers(scene):
        if scene.frame_start < m.frame <= scene.frame_end and m.camera != shown:
            shown = m.camera
            if shown != cam:
                switches.append((m.frame, shown.name))
    return switches


def scene_size(scene) -> tuple[int, int]:
    """The scene's render size, its percentage applied."""
    r = scene.render
    return (int(r.resolution_x * r.resolution_percentage / 100),
            int(r.resolution_y * r.resolution_percentage / 100))


def render_size(scene) -> tuple[int, int]:
    """Engine W×H: the render size (percentage applied), down to a multiple of 8."""
    w, h = scene_size(scene)
    return max(8, w - w % 8), max(8, h - h % 8)


def lens(camera_data, render, width: int, height: int) -> tuple[float, tuple[float, float]]:
    """(true vertical fov, lens shift as fractions of the picture) of an evaluated camera
    rendering the engine's W×H."""
    data = camera_data
    fit = (data.sensor_fit, width, height, render.pixel_aspect_x, render.pixel_aspect_y)
    return (vertical_fov(data.lens, data.sensor_width, data.sensor_height, *fit),
            shift_fractions(data.shift_x, data.shift_y, *fit))


def _check_finite(cam, start: int, matrices: list[np.ndarray], fovs: list[float],
                  values: dict[str, list[float]]) -> None:
    """Every sampled frame must give numbers a schedule can hold: a camera scaled to 0 (its
    direction lost) or keyed to NaN, or a NaN setting, is named with its frame."""
    for k, (matrix, fov) in enumerate(zip(matrices, fovs)):
        if not (np.isfinite(matrix).all() and np.isfinite(fov)):
            raise BakeError(f"camera {cam.name!r}: its transform or lens is not a number at "
                            f"frame {start + k}; check its keys, drivers and parents")
        if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
            raise BakeError(f"camera {cam.name!r}: it is scaled to 0 at frame {start + k} "
                            "(itself or a parent), so it has no direction to bake")
    for name, series in values.items():
        bad = next((k for k, v in enumerate(series) if not np.isfinite(v)), None)
        if bad is not None:
            raise BakeError(f"{name}: {series[bad]} at frame {start + bad} is not a number "
                            "a schedule can hold")


def sample(context, scene=None, *, with_camera: bool = True,
           scale: float | None = None) -> Bake:
    """frame_set through the scene range; the current frame is restored afterwards.

    ``scale`` (translation units per scene unit) replaces the scene's
    ``camera_scale``, e.g. 200 for metric scene depth.

    Everything that moves a camera counts (keyframes, constraints, parents,
    follow-path, drivers) because the evaluated object is read after a full
    depsgraph update. The numeric schedule properties are read the same way, after
    ``frame_set``: their keyframes, F-curve modifiers (noise, …), sound baked to
    samples and drivers are all evaluated, which ``fcurve.evaluate`` alone would
    miss for drivers. Deforum frame k is Blender frame start + k.
    """
    scene = scene or context.scene
    cam = scene_camera(scene) if with_camera else None
    start, end = scene.frame_start, scene.frame_end
    if end < start:
        raise BakeError(f"frame range: end {end} is before start {start}")
    if end - start + 1 > MAX_BAKED_FRAMES:
        raise BakeError(f"frame range: {end - start + 1} frames are more than a camera bake "
                        f"holds (at most {MAX_BAKED_FRAMES}); render the shot in parts")
    r = scene.render
    # The engine's picture is W×H (a multiple of 8): its fov, not the full render's,
    # is the one its pixels (and the rendered scene depth) were taken with.
    width, height = render_size(scene)
    settings = scene.deforum
    current, subframe = scene.frame_current, scene.frame_subframe
    matrices, fovs, shifts = [], [], []
    values: dict[str, list[float]] = {name: [] for name in props.NUMERIC_SCHEDULES}
    try:
        for frame in range(start, end + 1):
            scene.frame_set(frame)
            for name in values:  # float32 properties: their shortest decimal is what was
                # typed (0.02, not 0.0199999996)
                values[name].append(float(str(np.float32(getattr(settings, name)))))
            if cam is None:
                continue
            depsgraph = context.evaluated_depsgraph_get()
            ev = cam.evaluated_get(depsgraph)
            matrices.append(np.array(ev.matrix_world, dtype=float))
            fov, shift = lens(ev.data, r, width, height)
            fovs.append(fov)
            shifts.append(shift)
    finally:
        scene.frame_set(current, subframe=subframe)
    moves = cam is not None and settings.animation_mode in ("2D", "3D")
    _check_finite(cam, start, matrices if moves else [], fovs, values)
    schedules: dict[str, str] = {}
    if moves:
        schedules = bake_math.camera_schedules(np.stack(matrices), fovs,
                                               mode=settings.animation_mode,
                                               scale=settings.camera_scale if scale is None
                                               else scale, height=height, shifts=shifts)
        for key, text in schedules.items():
            if len(text) > MAX_SCHEDULE_CHARS:
                raise BakeError(f"frame range: the camera's {key} over {end - start + 1} "
                                f"frames is {len(text)} characters, more than a schedule "
                                f"holds ({MAX_SCHEDULE_CHARS}); render the shot in parts")
    return Bake(start, end - start + 1, np.stack(matrices) if matrices else np.zeros((0, 4, 4)),
                fovs, values, schedules)
