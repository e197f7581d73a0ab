"""Dense optical flow between two pictures, and warping a picture along a flow.

The estimators are OpenCV's: DIS (the "Medium" preset, and "Fine": finest
scale 0, 192 gradient-descent iterations, 8-pixel patches every 4 pixels) and
Farneback (5 pyramid levels, 21-pixel window), on greyscale copies.  A flow is
H×W×2 float32 pixels (x, y): where each pixel of the first picture is found in
the second.  RAFT is a learned estimator (``engine.raft``) that runs the local
weights file in ``raft_model_path``; without a loadable one, choosing it is a
settings error rather than a silent substitute.
OpenCV is imported when a flow is computed: the settings table reads ``METHODS``
in Blender's Python, which has numpy alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import SettingsError

METHODS = ("None", "RAFT", "DIS Medium", "DIS Fine", "Farneback")
FLOW_KEYS = ("optical_flow_cadence", "optical_flow_redo_generation")


def uses_raft(settings: Mapping[str, Any], key: str) -> bool:
    """Whether flow setting ``key`` (a ``FLOW_KEYS`` one or ``hybrid_flow_method``) runs
    RAFT in this run.  With ``flow_source`` 'scene' the scene's flow replaces the
    estimate whatever the method for cadence, and for hybrid motion from video frame to
    video frame; redo always estimates."""
    scene = settings["flow_source"] == "scene"
    if key == "hybrid_flow_method":
        return (settings["hybrid_motion"] == "Optical Flow" and settings[key] == "RAFT"
                and not (scene and not settings["hybrid_motion_use_prev_img"]))
    return settings[key] == "RAFT" and not (scene and key == "optical_flow_cadence")


def check_methods(settings: Mapping[str, Any]) -> None:
    """Load RAFT's weights up front (before any frame is written) when a flow setting
    runs it: a missing or unloadable ``raft_model_path`` is refused there."""
    for key in FLOW_KEYS:
        if uses_raft(settings, key):
            from .raft import use_raft
            use_raft(settings, key)


def grey(image: np.ndarray) -> np.ndarray:
    """A uint8 RGB picture as grey (a grey one as it is): what the estimators track."""
    import cv2
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def _dis(method: str) -> Any:
    import cv2
    if method == "DIS Medium":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(0)
    dis.setGradientDescentIterations(192)
    dis.setPatchSize(8)
    dis.setPatchStride(4)
    return dis


def estimate(first: np.ndarray, second: np.ndarray, method: str) -> np.ndarray:
    """The flow from ``first`` to ``second`` (uint8 RGB or grey, same size) by ``method``."""
    if method == "RAFT":
        from .raft import active
        return active()(first, second)
    import cv2
    a, b = grey(first), grey(second)
    if method in ("DIS Medium", "DIS Fine"):
        flow = _dis(method).calc(a, b, None)
    elif method == "Farneback":
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 21, 5, 7, 1.2, 0)
    else:
        raise SettingsError(f"optical flow method {method!r}: use one of "
                            "'DIS Medium', 'DIS Fine' or 'Farneback'", value=method)
    return flow.astype(np.float32)


def warp(image: np.ndarray, flow: np.ndarray, factor: float) -> np.ndarray:
    """``image`` carried ``factor`` × ``flow`` along: each output pixel x is read from
    x − factor·flow(x), edges mirrored (a negative factor carries it backwards)."""
    import cv2
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = grid_x - np.float32(factor) * flow[..., 0]
    map_y = grid_y - np.float32(factor) * flow[..., 1]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def flow_tween(older: np.ndarray, newer: np.ndarray, weight: float, method: str,
               factor: float) -> tuple[np.ndarray, np.ndarray]:
    """``older`` and ``newer`` moved to the in-between position ``weight`` (0 = older,
    1 = newer) along the flow between them, so their blend shows one picture, not two
    overlaid.  ``factor`` scales the flow (0: plain blending).  The flow is measured
    afresh at each tween, between the two pictures as the camera has carried them; the
    webui measures it once per block and adds it up tween by tween, which leaves the two
    keyframes half the flow apart."""
    flow = estimate(older, newer, method)
    return (warp(older, flow, weight * factor),
            warp(newer, flow, -(1.0 - weight) * factor))
