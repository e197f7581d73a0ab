"""Control images from the scene's exact geometry, without bpy: depth, normals, line art.

The conventions are those of the preprocessors ControlNet models were trained on, so a
scene pass can stand in for them:

- depth: like MiDaS, relative inverse depth, near = white; here 1/z of the true
  view-axis depth (sky: 0, infinitely far), min–max normalised per frame to 0…255.
  With sky in view the minimum is the sky's 0; without, the farthest point is black.
- normals: the "normal_bae" convention (ControlNet 1.1's normalbae model): camera-space
  normals with R = x pointing to the picture's LEFT, G = y up, B = z toward the camera,
  each mapped [−1, 1] → [0, 255]. A surface facing the camera is (128, 128, 255). Pixels
  that hit nothing get that facing colour too, as ControlNet 1.0's normal preprocessor
  flattened its background.
- line art: white 1-pixel lines on black (as lineart and canny models expect) where the
  geometry breaks: silhouettes (a surface next to sky, or a jump in depth far beyond its
  neighbours' slope) and creases (neighbouring normals over ``CREASE_DEGREES`` apart).
  Exact and free of texture and lighting noise, unlike edge detection on a render.
"""

from __future__ import annotations

import numpy as np

CREASE_DEGREES = 40.0
JUMP_RELATIVE = 0.02  # a depth step smaller than this share of the depth is never a line
JUMP_SLOPE = 4.0      # … nor one under this many times the steps beside it (a slanted plane)
FACING = np.array([128, 128, 255], np.uint8)


def depth_image(depth: np.ndarray) -> np.ndarray:
    """Grey H×W uint8: inverse depth normalised per frame (see the module's docstring)."""
    depth = np.asarray(depth, np.float64)
    hit = np.isfinite(depth) & (depth > 0)
    disparity = np.zeros_like(depth)
    disparity[hit] = 1.0 / depth[hit]
    low, high = disparity.min(), disparity.max()
    if high <= low:  # one depth everywhere (or nothing at all)
        return np.where(hit, 255, 0).astype(np.uint8)
    return np.round((disparity - low) / (high - low) * 255.0).astype(np.uint8)


def camera_normals(world: np.ndarray, camera_to_world: np.ndarray) -> np.ndarray:
    """H×W×3 unit normals in Blender's camera space (x right, y up, z toward the camera)
    from world-space normals and the camera's rotation (its matrix_world, any scale)."""
    rotation = np.asarray(camera_to_world, np.float64)[:3, :3]
    rotation = rotation / np.linalg.norm(rotation, axis=0, keepdims=True)
    normals = np.asarray(world, np.float64) @ rotation  # each row: Rᵀ n
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def normal_image(normals: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """RGB H×W×3 uint8 in the normal_bae convention from camera-space unit normals."""
    bae = np.asarray(normals, np.float64) * np.array([-1.0, 1.0, 1.0])
    rgb = np.round((np.clip(bae, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    rgb[~np.asarray(hit, bool)] = FACING
    return rgb


def _jumps(depth: np.ndarray, axis: int) -> np.ndarray:
    """Where the depth steps between a pixel and its next one along ``axis`` are far
    larger than the steps beside them (H×W, True on the nearer pixel of the pair)."""
    z = np.moveaxis(depth, axis, 0)
    with np.errstate(invalid="ignore"):  # sky next to sky: inf − inf, never a line
        step = np.abs(np.diff(z, axis=0))
    finite = np.where(np.isfinite(step), step, 0.0)
    before = np.vstack([finite[:1] * 0, finite[:-1]])
    after = np.vstack([finite[1:], finite[:1] * 0])
    with np.errstate(invalid="ignore"):
        big = (step > JUMP_RELATIVE * np.minimum(z[:-1], z[1:])) & \
            (step > JUMP_SLOPE * np.maximum(before, after))
    out = np.zeros(z.shape, bool)
    nearer_first = z[:-1] <= z[1:]
    out[:-1] |= big & nearer_first
    out[1:] |= big & ~nearer_first
    return np.moveaxis(out, 0, axis)


def _edges(hit: np.ndarray, axis: int) -> np.ndarray:
    """The surface pixel of each surface/sky pair of neighbours along ``axis``."""
    h = np.moveaxis(hit, axis, 0)
    change = h[:-1] != h[1:]
    out = np.zeros(h.shape, bool)
    out[:-1] |= change & h[:-1]
    out[1:] |= change & h[1:]
    return np.moveaxis(out, 0, axis)


def _creases(normals: np.ndarray, hit: np.ndarray, axis: int) -> np.ndarray:
    n = np.moveaxis(normals, axis, 0)
    h = np.moveaxis(hit, axis, 0)
    bent = (np.sum(n[:-1] * n[1:], axis=-1) < np.cos(np.radians(CREASE_DEGREES))) \
        & h[:-1] & h[1:]
    out = np.zeros(h.shape, bool)
    out[:-1] |= bent
    return np.moveaxis(out, 0, axis)


def line_art(depth: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Grey H×W uint8, white lines on black, from depth (+inf: sky) and unit normals."""
    depth = np.asarray(depth, np.float64)
    hit = np.isfinite(depth)
    solid = np.where(hit, depth, np.inf)
    lines = np.zeros(depth.shape, bool)
    for axis in (0, 1):
        lines |= _edges(hit, axis) | _creases(normals, hit, axis)
        lines |= _jumps(solid, axis) & hit
    return np.where(lines, 255, 0).astype(np.uint8)
