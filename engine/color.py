"""Colour coherence: pull a frame's palette towards a reference by histogram matching.

Follows Deforum's ``maintain_colors`` (OpenCV 8-bit conversions, then
``skimage.exposure.match_histograms`` per channel) in true RGB channel order
and with the result rounded instead of truncated.
"""

from __future__ import annotations

import numpy as np

_PREFIX = "match frame 0 "
_SPACES = ("lab", "hsv", "rgb")


def _space(mode: str) -> str | None:
    """``"LAB"``/``"Match Frame 0 LAB"`` → ``"lab"``; ``"None"`` → None (any case)."""
    name = mode.strip().lower() if isinstance(mode, str) else ""
    if name.startswith(_PREFIX):
        name = name[len(_PREFIX):].strip()
    if name == "none":
        return None
    if name not in _SPACES:
        raise ValueError(f"unknown colour coherence mode {mode!r}: expected None, LAB, HSV, "
                         "RGB or 'Match Frame 0 LAB|HSV|RGB'")
    return name


def _matching_table(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Byte → byte table that histogram-matches one uint8 channel to another.

    Same numbers as skimage's unique-based algorithm: each source value goes to
    its cumulative quantile, looked up in the reference's quantile → value curve
    by linear interpolation, then rounded.  256-bin counts replace
    ``np.unique`` because the values are bytes; the cumulative sums over the
    values present are identical.
    """
    src_counts = np.bincount(source.ravel(), minlength=256)
    ref_counts = np.bincount(reference.ravel(), minlength=256)
    src_present = np.flatnonzero(src_counts)
    ref_present = np.flatnonzero(ref_counts)
    src_quantiles = np.cumsum(src_counts)[src_present] / source.size
    ref_quantiles = np.cumsum(ref_counts)[ref_present] / reference.size
    table = np.zeros(256, dtype=np.uint8)
    table[src_present] = np.rint(np.interp(src_quantiles, ref_quantiles, ref_present))
    return table


def match_colors(image: np.ndarray, reference: np.ndarray, mode: str) -> np.ndarray:
    """``image`` (uint8 RGB) with each channel's histogram matched to ``reference``'s.

    ``mode`` picks the colour space (LAB, HSV or RGB, optionally spelt
    "Match Frame 0 …", any case); "None" returns ``image`` itself.
    """
    space = _space(mode)
    if space is None:
        return image
    for name, array in (("image", image), ("reference", reference)):
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"{name} must be a uint8 H×W×3 RGB array, got "
                             f"{array.dtype} {array.shape}")
    import cv2

    forward, back = {"lab": (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB),
                     "hsv": (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB),
                     "rgb": (None, None)}[space]
    source = image if forward is None else cv2.cvtColor(image, forward)
    target = reference if forward is None else cv2.cvtColor(reference, forward)
    tables = [_matching_table(source[..., c], target[..., c]) for c in range(3)]
    matched = cv2.LUT(source, np.stack(tables, axis=-1)[:, None, :])
    return matched if back is None else cv2.cvtColor(matched, back)
