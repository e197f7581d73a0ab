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
    depth = np.array(rgba[..., 0], dtype=np.float32)
    depth[rgba[..., 3] < 0.5] = FAR
    return depth


def mask_rgba(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bottom-up RGBA floats of a grey mask from the coverage (alpha) of a render:
    white where it is covered (diffused), black elsewhere, opaque."""
    alpha = np.asarray(pixels, dtype=np.float32).reshape(height, width, 4)[..., 3]
    grey = np.clip(alpha, 0.0, 1.0)
    return np.stack([grey, grey, grey, np.ones_like(grey)], axis=-1).ravel()
