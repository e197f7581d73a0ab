"""Forward–backward consistency of an optical flow (``hybrid_flow_consistency``).

A pixel's flow is trusted when following it forward and then the backward
flow found at its landing point brings it back home.  Where the round trip
misses by more than a tolerance that grows with the motion (0.5 px² plus 1 %
of both flows' squared lengths) the pixel was probably hidden in one of the
pictures.  The mask is 1 on trusted pixels and −0.75 on the others, and the
flow is multiplied by it, so an untrusted pixel is pushed a little the other
way instead of being dragged along; ``hybrid_consistency_blur`` (a Gaussian
sigma, reaching one sigma, zero outside the picture) softens the mask first.
These are the values and the tolerance of the webui's check.
"""

from __future__ import annotations

import numpy as np

from .flow import estimate

UNRELIABLE = -0.75  # the mask's value on pixels whose round trip misses


def _sample(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``field`` (H×W×2) read bilinearly at (x, y), clamped one pixel inside the far edges."""
    h, w = field.shape[:2]
    x = np.clip(x, 0, w - 2)
    y = np.clip(y, 0, h - 2)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = field[y0, x0] * (1 - fx) + field[y0, x0 + 1] * fx
    bottom = field[y0 + 1, x0] * (1 - fx) + field[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def consistency_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """H×W float32: 1 where ``backward`` undoes ``forward``, ``UNRELIABLE`` elsewhere."""
    h, w = forward.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    forward = forward.astype(np.float64)
    landed_x, landed_y = xs + forward[..., 0], ys + forward[..., 1]
    back = _sample(backward.astype(np.float64), landed_x, landed_y)
    miss = (landed_x + back[..., 0] - xs) ** 2 + (landed_y + back[..., 1] - ys) ** 2
    tolerance = 0.01 * ((back ** 2).sum(axis=2) + (forward ** 2).sum(axis=2)) + 0.5
    return np.where(miss >= tolerance, UNRELIABLE, 1.0).astype(np.float32)


def blur_mask(mask: np.ndarray, sigma: float) -> np.ndarray:
    """``mask`` under a Gaussian of ``sigma`` pixels cut off at one sigma, zero outside."""
    if sigma <= 0:
        return mask
    from scipy.ndimage import gaussian_filter
    return gaussian_filter(mask.astype(np.float32), sigma=sigma, mode="constant", cval=0.0,
                           truncate=1.0)


def reliable_flow(first: np.ndarray, second: np.ndarray, method: str,
                  blur: float) -> tuple[np.ndarray, np.ndarray]:
    """(flow from ``first`` to ``second`` scaled by its consistency mask, the mask)."""
    forward = estimate(first, second, method)
    mask = blur_mask(consistency_mask(forward, estimate(second, first, method)), blur)
    return forward * mask[..., None], mask
