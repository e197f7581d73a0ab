"""What importing a Deforum settings file writes into a scene, computed without bpy.

``import_scene`` (the bpy side) only applies what this module returns: property
values, prompt rows, the scene frame rate, and for 2D/3D files the per-frame
camera keys (location, quaternion, lens) whose bake (``bake.sample`` →
``bake_math.camera_schedules``) gives back the file's motion schedules. Everything
is computed before the scene is touched, so a file that fails here changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.camera import (SCHEDULE_KEYS, lens_from_vertical_fov, motion_to_matrices,
                            vertical_fov)
from ..engine.errors import SettingsError, shown
from ..engine.schedules import PromptSchedule
from ..engine.settings import Settings
from ..engine.settings_table import Setting, camera_keys

# What an imported camera carries per mode (a file's lens shift stays a schedule).
CAMERA_MODES = {"3D": SCHEDULE_KEYS, "2D": camera_keys("2D")}
# A new camera starts at the origin looking along +Y, level (Blender's front view).
DEFAULT_START = np.array([[1.0, 0.0, 0.0, 0.0],
                          [0.0, 0.0, -1.0, 0.0],
                          [0.0, 1.0, 0.0, 0.0],
                          [0.0, 0.0, 0.0, 1.0]])


# ---------------------------------------------------------------- settings

def plain_constant(settings: Settings, name: str) -> float | None:
    """The value of a schedule that is one constant key (``"0: (1.04)"``), else None."""
    keys = settings.schedule(name).keys
    if len(keys) != 1 or keys[0].expression is not None:
        return None
    return keys[0].value


def property_values(settings: Settings, rows: Iterable[Setting], numeric: Collection[str], *,
                    limits: Mapping[str, tuple[float, float]], animated: Collection[str] = (),
                    camera_keys: Collection[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """``scene.deforum`` attribute → value for every row, and warnings for the user.

    A numeric schedule that is a plain constant sets the property and clears
    ``<name>_override``; anything else goes into the override as written. A
    constant also goes into the override when the property is keyframed or
    driven (``animated``: the animation would win at the next frame change and
    the user's keys are not deleted) or out of the property's ``limits``.
    ``camera_keys`` (the motion keys the camera will bake) get no override, so
    the camera drives them. Numbers outside ``limits`` are clamped with a warning.
    """
    values: dict[str, Any] = {}
    notes: list[str] = []
    for row in rows:
        name, value = row.name, settings[row.name]
        low, high = limits.get(name, (-math.inf, math.inf))
        if name in numeric:
            constant = plain_constant(settings, name)
            if constant is not None and name not in animated and low <= constant <= high:
                values[name], values[name + "_override"] = constant, ""
            else:
                values[name + "_override"] = "" if name in camera_keys else value
            continue
        if row.type in ("int", "float") and not low <= value <= high:
            clamped = type(value)(min(max(value, low), high))
            notes.append(f"{name}: {value} is outside Blender's range; set to {clamped}, so "
                         "renders will differ from the file's")
            value = clamped
        values[name] = value
    for name, value in values.items():
        _storable(name.removesuffix("_override"), value)
    return values, notes


def _storable(name: str, value: Any) -> None:
    """Blender's text properties end at a NUL byte: such a value is refused, not cut."""
    if isinstance(value, str) and "\x00" in value:
        raise SettingsError(f"{name}: {shown(value)} has a NUL byte, which Blender cannot "
                            "store", key=name, value=value)


def prompt_rows(settings: Settings) -> list[tuple[int, str, str]]:
    """(Deforum frame, prompt, negative) rows as the engine keys them.

    Frame keys may be expressions (``"max_f-2"``); the engine's own prompt
    schedule evaluates them. A row's negative is the file's negative prompt
    for that frame, else the prompt's inline ``--neg`` part; a frame that has
    only a negative key keeps the prompt active there.
    """
    variables = {"max_frames": settings["max_frames"], "seed": max(settings["seed"], 0)}
    positive = PromptSchedule(settings["animation_prompts"], **variables)
    explicit: dict[int, str] = {}
    if settings["negative_prompts"]:
        negative = PromptSchedule(settings["negative_prompts"], key="negative_prompts",
                                  **variables)
        explicit = {frame: negative.at(frame)[0] for frame in negative.keys}
    rows = []
    for frame in sorted(set(positive.keys) | set(explicit)):
        prompt, inline = positive.at(frame)
        rows.append((frame, prompt, explicit[frame] if frame in explicit else inline))
    for _frame, prompt, negative in rows:
        _storable("animation_prompts", prompt)
        _storable("negative_prompts", negative)
    return rows


def fps_pair(fps: float) -> tuple[int, float]:
    """Blender's (fps, fps_base) for a frame rate: 29.97 → (30, 1.001)."""
    whole = max(1, round(fps))
    return whole, whole / fps


# ---------------------------------------------------------------- camera

@dataclass(frozen=True)
class Sensor:
    """What turns a lens into a vertical fov: the camera's sensor and the render size."""

    width: float
    height: float
    fit: str
    res_x: float
    res_y: float
    pixel_aspect_x: float = 1.0
    pixel_aspect_y: float = 1.0

    def _args(self) -> tuple:
        return (self.width, self.height, self.fit, self.res_x, self.res_y,
                self.pixel_aspect_x, self.pixel_aspect_y)

    def lens(self, fov: float) -> float:
        return lens_from_vertical_fov(fov, *self._args())

    def fov(self, lens: float) -> float:
        return vertical_fov(lens, *self._args())


@dataclass
class CameraKeys:
    """One key per frame: location (N, 3), quaternion w, x, y, z (N, 4), lens in mm (N,)."""

    locations: np.ndarray
    quaternions: np.ndarray
    lenses: np.ndarray
    warnings: list[str] = field(default_factory=list)


def quaternions(rotations: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) of (N, 3, 3) rotations, each in the hemisphere of the
    one before, so that keys interpolated between frames take the short way round."""
    out = np.empty((len(rotations), 4))
    for k, m in enumerate(np.asarray(rotations, dtype=float)):
        trace = m[0, 0] + m[1, 1] + m[2, 2]
        if trace > 0:
            s = 2.0 * math.sqrt(1.0 + trace)
            q = (0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s,
                 (m[1, 0] - m[0, 1]) / s)
        elif m[0, 0] >= m[1, 1] and m[0, 0] >= m[2, 2]:
            s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
            q = ((m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s,
                 (m[0, 2] + m[2, 0]) / s)
        elif m[1, 1] >= m[2, 2]:
            s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
            q = ((m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s,
                 (m[1, 2] + m[2, 1]) / s)
        else:
            s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
            q = ((m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s,
                 0.25 * s)
        out[k] = q
        if k and out[k] @ out[k - 1] < 0:
            out[k] = -out[k]
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _frames(values: np.ndarray) -> str:
    shown = ", ".join(str(int(f)) for f in values[:8])
    return shown + (f" … ({len(values)} frames)" if len(values) > 8 else "")


def _clamped_lenses(lenses: np.ndarray, key: str, lens_range: tuple[float, float],
                    notes: list[str]) -> np.ndarray:
    low, high = lens_range
    outside = np.flatnonzero((lenses < low) | (lenses > high))
    if len(outside):
        notes.append(f"{key}: at frames {_frames(outside)} the lens would be outside "
                     f"{low:g}–{high:g} mm; clamped there, so the bake differs at those frames")
    return np.clip(lenses, low, high)


def _lenses_3d(fovs: np.ndarray, sensor: Sensor) -> np.ndarray:
    bad = np.flatnonzero(~((fovs > 0.0) & (fovs < 180.0)))
    if len(bad):
        k = int(bad[0])
        raise SettingsError(f"fov: {fovs[k]:g} at frame {k} is not between 0 and 180 degrees",
                            key="fov", value=float(fovs[k]))
    return np.array([sensor.lens(f) for f in fovs])


def _motion_2d(values: Mapping[str, np.ndarray], sensor: Sensor, height: float,
               lens_range: tuple[float, float], notes: list[str]):
    """Camera motion and lenses whose 2D bake (``bake_math.motion_2d``) gives ``values``.

    zoom_k = lens_k / lens_{k−1} (the bake's tan ratio), starting from the fov
    of frame 0; roll = angle; pan/tilt from the pixel shift f·tan θ with
    f = (H/2)/tan(fov_k/2).
    """
    zoom, angle = values["zoom"], values["angle"]
    bad = np.flatnonzero(zoom[1:] <= 0.0) + 1
    if len(bad):
        k = int(bad[0])
        raise SettingsError(f"zoom: {zoom[k]:g} at frame {k} is not above 0", key="zoom",
                            value=float(zoom[k]))
    lenses = np.empty(len(zoom))
    lenses[0] = _clamped_lenses(np.array([sensor.lens(values["fov"][0])]), "fov",
                                lens_range, notes)[0]
    for k in range(1, len(zoom)):
        lenses[k] = lenses[k - 1] * zoom[k]
    lenses = _clamped_lenses(lenses, "zoom", lens_range, notes)
    focal = np.array([(height / 2.0) / math.tan(math.radians(sensor.fov(lens)) / 2.0)
                      for lens in lenses])
    wrapped = np.flatnonzero(np.abs(angle[1:]) > 180.0) + 1
    if len(wrapped):
        notes.append(f"angle: at frames {_frames(wrapped)} the turn exceeds 180° per frame; "
                     "the camera rolls the short way (the same image), so the bake writes "
                     "the equivalent angle within ±180°")
    motion = {"rotation_3d_x": np.degrees(np.arctan(values["translation_y"] / focal)),
              "rotation_3d_y": -np.degrees(np.arctan(values["translation_x"] / focal)),
              "rotation_3d_z": angle}
    return motion, lenses


def camera_keys(settings: Settings, *, scale: float, sensor: Sensor, height: float,
                start: np.ndarray | None = None,
                lens_range: tuple[float, float] = (1.0, math.inf)) -> CameraKeys:
    """Per-frame camera keys for a 2D or 3D settings file.

    3D: ``engine.camera.motion_to_matrices`` (inverse of the bake's
    ``matrices_to_motion``) with ``scale`` schedule units per scene unit, and
    lenses from the ``fov`` schedule for ``sensor``. 2D: see ``_motion_2d``;
    ``height`` is the render height in pixels the bake will use. ``start`` is
    the camera-to-world pose of frame 0 (DEFAULT_START when None). Value 0 of
    every motion key is not used, as Deforum never warps its first frame.
    """
    mode = settings["animation_mode"]
    if mode not in CAMERA_MODES:
        raise ValueError(f"animation_mode {mode!r} has no camera motion")
    count = settings["max_frames"]
    needed = (*CAMERA_MODES[mode], "fov")
    values = {key: np.asarray(settings.schedule(key).values(count), dtype=float)
              for key in dict.fromkeys(needed)}
    notes: list[str] = []
    if mode == "3D":
        motion = values
        lenses = _clamped_lenses(_lenses_3d(values["fov"], sensor), "fov", lens_range, notes)
    else:
        motion, lenses = _motion_2d(values, sensor, height, lens_range, notes)
    matrices = motion_to_matrices(motion, scale=scale,
                                  start=DEFAULT_START if start is None else start)
    return CameraKeys(matrices[:, :3, 3].copy(), quaternions(matrices[:, :3, :3]), lenses, notes)
