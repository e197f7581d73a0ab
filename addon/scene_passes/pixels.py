"""Pixel maths of the scene passes, without bpy: render buffers → depth maps and masks."""

from __future__ import annotations

import numpy as np

FAR = np.inf  # depth of pixels that hit nothing (the engine reads +inf as far away)


def depth_from_rgba(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """float32 H×W depth (row 0 at the top) from a bottom-up RGBA float buffer.

    The depth render stores view-axis depth in R and coverage in alpha
    (transparent film); a pixel whose ray hit nothing (alpha < ½) is ``FAR``,
    never 0, so the warp treats sky as infinitely far.
    """
    rgba = np.asarray(pixels, dtype=np.float32).reshape(height, width, 4)[::-1]
    return sky_is_far(np.array(rgba[..., 0], dtype=np.float32), rgba[..., 3])


def sky_is_far(depth: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``depth`` (changed in place) with every pixel whose ray hit nothing (coverage
    ``alpha`` below ½) at ``FAR``."""
    depth[alpha < 0.5] = FAR
    return depth


def mask_rgba(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bottom-up RGBA floats of a grey mask from the coverage (alpha) of a render:
    white where it is covered (diffused), black elsewhere, opaque."""
    alpha = np.asarray(pixels, dtype=np.float32).reshape(height, width, 4)[..., 3]
    grey = np.clip(alpha, 0.0, 1.0)
    return np.stack([grey, grey, grey, np.ones_like(grey)], axis=-1).ravel()


MOVING_PX = 0.1  # the vector pass and the camera's flow differ by more: the object moves


def forward_vectors(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """H×W×2 flow to the next frame (x right, y down) from Blender's Vector pass.

    The pass holds, per pixel, the motion from the previous frame in X/Y and
    the motion into the next frame in Z/W, each as (earlier position − later
    position) in pixels with y up (checked against projected points in
    ``tests/blender/test_scene_flow_pass.py``): the flow to the next frame is
    (−Z, +W) in picture rows that run down.
    """
    return np.stack([-np.asarray(z, np.float32), np.asarray(w, np.float32)], axis=-1)


def backward_vectors(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """H×W×2 flow to the previous frame (x right, y down) from the Vector pass's X/Y:
    (earlier − later) with y up is already where the pixel was, less where it is, in x,
    and the opposite in rows that run down: (+X, −Y)."""
    return np.stack([np.asarray(x, np.float32), -np.asarray(y, np.float32)], axis=-1)


def scene_flow(static: np.ndarray, vectors: np.ndarray,
               depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flow, moving): the camera's flow over the static scene (exact from the depth at
    each pixel centre), Blender's vectors where a surface is hit (``depth`` finite) and
    they differ from it by over ``MOVING_PX`` (what moves or deforms on its own). Sky
    keeps the camera's flow: the Vector pass leaves it at 0."""
    moving = np.isfinite(depth) & \
        (np.hypot(*(vectors - static).transpose(2, 0, 1)) > MOVING_PX)
    return np.where(moving[..., None], vectors, static).astype(np.float32), moving
