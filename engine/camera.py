"""Camera math between Blender camera paths and Deforum 3D motion schedules.

Blender gives absolute camera-to-world matrices (camera looks down local −Z,
+Y up, +X right, world Z up). Deforum wants, for every frame k ≥ 1, the motion
from frame k−1 to k (key 0 is always 0) plus an absolute vertical ``fov``.
Deforum's 3D warp moves the picture as a camera that translates by
(tx, ty, −tz)/200 in its own axes (+x right, +y up, +z forward) and turns by the
XYZ Euler angles (rx, −ry, −rz); this module states Blender's camera motion in
those terms, so a frame warped with the schedules shows what the Blender camera
sees next, and inverts it for importing a settings file as a camera. It needs
numpy only so that it runs inside Blender's Python as well as in the engine.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .settings_table import camera_keys
from .units import TRANSLATION_SCALE

DEFAULT_FOV = 40.0  # DSD/CLI default vertical fov, degrees
# The camera's pose change per frame: translation x y z, then rotation x y z.
MOTION_KEYS = tuple(k for k in camera_keys("3D") if k.startswith(("translation_", "rotation_")))
SCHEDULE_KEYS = MOTION_KEYS + ("fov",)
SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")

_DECIMALS = 10
_GIMBAL_EPS = 1e-9

Floats = Sequence[float] | np.ndarray
Matrices = Sequence[np.ndarray] | np.ndarray
ScheduleValue = str | float | Floats


# ---------------------------------------------------------------- rotations

def _rx(a: np.ndarray) -> np.ndarray:
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], axis=-1).reshape(a.shape + (3, 3))


def _ry(a: np.ndarray) -> np.ndarray:
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], axis=-1).reshape(a.shape + (3, 3))


def _rz(a: np.ndarray) -> np.ndarray:
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(a.shape + (3, 3))


def _orthonormal(linear: np.ndarray) -> np.ndarray:
    """The camera's rotation from a 3×3 part that may carry parent scale or shear.

    Gram–Schmidt starting from the Z column then Y keeps the viewing axis and
    the image's vertical plane exactly as Blender renders them (Blender only
    normalises the columns of a camera matrix); X follows as Y × Z so the
    result is always a proper rotation, even for mirrored parents.
    """
    z = linear[..., :, 2] / np.linalg.norm(linear[..., :, 2], axis=-1, keepdims=True)
    y = linear[..., :, 1] - np.sum(linear[..., :, 1] * z, axis=-1, keepdims=True) * z
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=-1)


def _xyz_angles(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angles (a, b, c) in radians with q = Rx(a)·Ry(b)·Rz(c) for each 3×3 in q.

    This is the composition Deforum's warp builds (pytorch3d "XYZ"). In
    mathutils terms it is ``to_euler('ZYX')``, not ``to_euler('XYZ')``
    (= Rz·Ry·Rx); the two agree only for small or single-axis rotations.
    b stays within ±90°. At gimbal lock (|b| = 90°) only a + c or a − c is
    defined, so a is set to 0 and c carries the whole turn; c is always
    solved after a, so q is reproduced exactly either way.
    """
    cos_b = np.hypot(q[..., 1, 2], q[..., 2, 2])
    a = np.where(cos_b < _GIMBAL_EPS, 0.0, np.arctan2(-q[..., 1, 2], q[..., 2, 2]))
    b = np.arctan2(q[..., 0, 2], cos_b)
    ca, sa = np.cos(a), np.sin(a)
    c = np.arctan2(ca * q[..., 1, 0] + sa * q[..., 2, 0],
                   ca * q[..., 1, 1] + sa * q[..., 2, 1])
    return a, b, c


# ---------------------------------------------------------------- matrices → motion

def matrices_to_motion(matrices: Matrices, fovs: Floats, *,
                       scale: float = TRANSLATION_SCALE) -> dict[str, np.ndarray]:
    """Per-frame Deforum motion values (one array per key of SCHEDULE_KEYS).

    ``matrices`` are N camera-to-world 4×4 matrices in Blender's convention and
    ``fovs`` the N vertical fovs in degrees. Value k of a motion key is the
    move from frame k−1 to k, value 0 is 0; ``fov`` is absolute per frame.
    Translation is the displacement in the new camera's axes times ``scale``
    (tx = s·d'x, ty = s·d'y, tz = −s·d'z); rotation is the relative rotation
    in the old camera's axes, Q = Rx(a)·Ry(b)·Rz(c) (see ``_xyz_angles``),
    written rx = +a°, ry = −b°, rz = −c° because Deforum's camera frame is
    Blender's with Y and Z flipped.
    """
    m = np.asarray(matrices, dtype=float)
    fov = np.asarray(fovs, dtype=float)
    if m.ndim != 3 or m.shape[1:] != (4, 4) or len(m) == 0:
        raise ValueError(f"expected N camera matrices of shape (N, 4, 4), got {m.shape}")
    if fov.shape != (len(m),):
        raise ValueError(f"expected {len(m)} fov values, got shape {fov.shape}")
    rot = _orthonormal(m[:, :3, :3])
    pos = m[:, :3, 3]
    moved = np.einsum("nji,nj->ni", rot[1:], pos[1:] - pos[:-1])  # R_kᵀ(t_k − t_{k−1})
    a, b, c = _xyz_angles(np.swapaxes(rot[:-1], -1, -2) @ rot[1:])  # R_{k−1}ᵀ R_k
    columns = (scale * moved[:, 0], scale * moved[:, 1], -scale * moved[:, 2],
               np.degrees(a), -np.degrees(b), -np.degrees(c))
    motion = {key: np.concatenate([[0.0], col]) for key, col in zip(MOTION_KEYS, columns)}
    motion["fov"] = fov.copy()
    return motion


def format_number(value: float) -> str:
    """A plain decimal that every Deforum parser reads as a number.

    The reference treats ``1e-3`` as an expression (step, not ramp), so no
    exponent is ever written: fixed 10 decimals, trailing zeros stripped,
    and −0 written as 0.
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value} in a schedule")
    text = f"{value:.{_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_schedule(values: Iterable[float]) -> str:
    """``"0:(v0), 1:(v1), …"`` with one key per frame."""
    return ", ".join(f"{frame}:({format_number(v)})" for frame, v in enumerate(values))


def matrices_to_schedules(matrices: Matrices, fovs: Floats, *,
                          scale: float = TRANSLATION_SCALE) -> dict[str, str]:
    """``matrices_to_motion`` written as Deforum schedule strings."""
    return {key: format_schedule(values)
            for key, values in matrices_to_motion(matrices, fovs, scale=scale).items()}


# ---------------------------------------------------------------- motion → matrices

def motion_to_matrices(motion: Mapping[str, Floats], *,
                       scale: float = TRANSLATION_SCALE,
                       start: np.ndarray | None = None) -> np.ndarray:
    """Rebuild (N, 4, 4) rigid camera-to-world matrices from per-frame motion.

    Inverse of ``matrices_to_motion``. Frame 0 is ``start`` (identity when
    None; its rotation is orthonormalised, its position kept) and value 0 of
    every motion key is ignored, as Deforum never warps its first frame.
    Missing motion keys mean no motion on that axis; ``fov`` is not used.
    """
    present = {key: np.asarray(motion[key], dtype=float) for key in MOTION_KEYS if key in motion}
    if not present:
        raise ValueError(f"motion needs at least one of {', '.join(MOTION_KEYS)}")
    lengths = {key: arr.shape for key, arr in present.items()}
    shape = next(iter(lengths.values()))
    if len(shape) != 1 or len(set(lengths.values())) != 1:
        raise ValueError(f"motion arrays must be 1-D and of equal length, got {lengths}")
    tx, ty, tz, rx, ry, rz = (present.get(key, np.zeros(shape)) for key in MOTION_KEYS)
    turns = _rx(np.radians(rx)) @ _ry(-np.radians(ry)) @ _rz(-np.radians(rz))
    steps = np.stack([tx, ty, -tz], axis=-1) / scale

    first = np.eye(4) if start is None else np.asarray(start, dtype=float)
    if first.shape != (4, 4):
        raise ValueError(f"start must be a 4×4 matrix, got shape {first.shape}")
    out = np.zeros(shape + (4, 4))
    out[:, 3, 3] = 1.0
    rot, pos = _orthonormal(first[:3, :3]), first[:3, 3].copy()
    for k in range(shape[0]):
        if k:
            rot = rot @ turns[k]
            pos = pos + rot @ steps[k]
        out[k, :3, :3] = rot
        out[k, :3, 3] = pos
    return out


def _series(value: ScheduleValue, max_frames: int, key: str) -> np.ndarray:
    """One float per frame from a schedule string, a constant or a ready sequence."""
    if isinstance(value, (str, numbers.Real)):
        from .schedules import evaluate_schedule  # heavier parser, loaded only when needed

        return np.asarray(evaluate_schedule(value, max_frames, key=key), dtype=float)
    arr = np.asarray(value, dtype=float)
    if arr.shape != (max_frames,):
        raise ValueError(f"{key}: expected {max_frames} values, got shape {arr.shape}")
    return arr


def schedules_to_matrices(schedules: Mapping[str, ScheduleValue], max_frames: int, *,
                          scale: float = TRANSLATION_SCALE,
                          start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Camera matrices and vertical fovs for ``max_frames`` frames from Deforum schedules.

    This is how a Deforum settings file becomes a Blender camera animation.
    Missing motion keys mean no motion; a missing ``fov`` is DEFAULT_FOV.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    motion = {key: (_series(schedules[key], max_frames, key) if key in schedules
                    else np.zeros(max_frames))
              for key in MOTION_KEYS}
    fovs = _series(schedules["fov"], max_frames, "fov") if "fov" in schedules \
        else np.full(max_frames, DEFAULT_FOV)
    return motion_to_matrices(motion, scale=scale, start=start), fovs


# ---------------------------------------------------------------- lens ↔ fov

def _image_height_on_sensor(sensor_width: float, sensor_height: float, sensor_fit: str,
                            res_x: float, res_y: float, pixel_aspect_x: float,
                            pixel_aspect_y: float) -> float:
    """Millimetres of sensor spanned by the rendered image's height, as Blender fits it.

    AUTO fits ``sensor_width`` to the larger side of the image (pixel aspect
    included), HORIZONTAL fits it to the width, VERTICAL fits
    ``sensor_height`` to the height. Camera ``angle_y`` ignores the render
    size, hence this helper.
    """
    width, height = res_x * pixel_aspect_x, res_y * pixel_aspect_y
    if sensor_fit == "VERTICAL":
        return sensor_height
    if sensor_fit == "HORIZONTAL" or (sensor_fit == "AUTO" and width >= height):
        return sensor_width * height / width
    if sensor_fit == "AUTO":
        return sensor_width
    raise ValueError(f"sensor_fit must be one of {', '.join(SENSOR_FITS)}, got {sensor_fit!r}")


def vertical_fov(lens: float, sensor_width: float, sensor_height: float, sensor_fit: str,
                 res_x: float, res_y: float, pixel_aspect_x: float = 1.0,
                 pixel_aspect_y: float = 1.0) -> float:
    """True vertical field of view in degrees of the image Blender renders."""
    extent = _image_height_on_sensor(sensor_width, sensor_height, sensor_fit, res_x, res_y,
                                     pixel_aspect_x, pixel_aspect_y)
    return math.degrees(2.0 * math.atan(extent / (2.0 * lens)))


def shift_fractions(shift_x: float, shift_y: float, sensor_fit: str, res_x: float,
                    res_y: float, pixel_aspect_x: float = 1.0,
                    pixel_aspect_y: float = 1.0) -> tuple[float, float]:
    """Blender's lens shift as fractions of the rendered picture's width and height.

    Blender measures both shifts in units of the fitted side (the width for a
    horizontal fit, the height for a vertical one); ``lens_shift_x/y`` are per side.
    """
    width, height = res_x * pixel_aspect_x, res_y * pixel_aspect_y
    if sensor_fit not in SENSOR_FITS:
        raise ValueError(f"sensor_fit must be one of {', '.join(SENSOR_FITS)}, "
                         f"got {sensor_fit!r}")
    horizontal = sensor_fit == "HORIZONTAL" or (sensor_fit == "AUTO" and width >= height)
    fitted = width if horizontal else height
    return shift_x * fitted / width, shift_y * fitted / height


def lens_from_vertical_fov(fov: float, sensor_width: float, sensor_height: float, sensor_fit: str,
                           res_x: float, res_y: float, pixel_aspect_x: float = 1.0,
                           pixel_aspect_y: float = 1.0) -> float:
    """Focal length in mm that gives a rendered image of vertical fov ``fov`` degrees."""
    if not 0.0 < fov < 180.0:
        raise ValueError(f"fov must be between 0 and 180 degrees, got {fov}")
    extent = _image_height_on_sensor(sensor_width, sensor_height, sensor_fit, res_x, res_y,
                                     pixel_aspect_x, pixel_aspect_y)
    return extent / (2.0 * math.tan(math.radians(fov) / 2.0))
