"""Hybrid motion: the animation moves the way a guide video moves.

Each frame f ≥ 1 of a 2D/3D run, after the camera warp, the carried picture
is moved once more by the video's motion from frame f−1 to frame f: a dense
optical flow (``hybrid_flow_method``, scaled by ``hybrid_flow_factor_schedule``)
or one global transform found from tracked corners with RANSAC (Perspective: a
homography; Affine: rotation, uniform scale and translation).  With
``hybrid_motion_use_prev_img`` the motion is measured from the carried picture
itself to video frame f, which pulls the animation onto the video.  With
``hybrid_flow_consistency`` the flow is held back where it fails its
forward–backward check (``engine.flow_consistency``).  Frames past the end of
the clip get no hybrid motion.  RAFT runs the weights file in
``raft_model_path``, loaded (or refused) up front.  OpenCV is imported when motion
is computed: the settings table reads the choices in Blender's Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .flow import estimate, grey, uses_raft, warp
from .progress import Progress

MOTIONS = ("None", "Optical Flow", "Perspective", "Affine")
HYBRID_FLOW_METHODS = ("RAFT", "DIS Medium", "DIS Fine", "Farneback")
MIN_POINTS = 8  # fewer tracked corners than this: no reliable transform, the frame stays


def check_hybrid(settings: Mapping[str, Any]) -> None:
    """Load RAFT's weights for hybrid optical flow before any frame is written (a missing
    or unloadable ``raft_model_path`` is refused there)."""
    if uses_raft(settings, "hybrid_flow_method"):
        from .raft import use_raft
        use_raft(settings, "hybrid_flow_method")


def transform_matrix(first: np.ndarray, second: np.ndarray, kind: str) -> np.ndarray:
    """The global transform taking ``first``'s content to where it is in ``second``:
    3×3 for "Perspective", 2×3 for "Affine"; the identity when too few corners track.

    Corners as the webui finds them (up to 200, quality 0.01, 3-pixel blocks), at
    least 30 pixels apart, or an eighth of the shorter side on small pictures so
    that enough of them fit."""
    import cv2
    a, b = grey(first), grey(second)
    identity = np.eye(3) if kind == "Perspective" else np.eye(2, 3)
    spacing = min(30, max(4, min(a.shape) // 8))
    points = cv2.goodFeaturesToTrack(a, maxCorners=200, qualityLevel=0.01,
                                     minDistance=spacing, blockSize=3)
    if points is None or len(points) < MIN_POINTS:
        return identity
    moved, status, _ = cv2.calcOpticalFlowPyrLK(a, b, points, None)
    found = status.ravel() == 1
    if found.sum() < MIN_POINTS:
        return identity
    if kind == "Perspective":
        matrix, _ = cv2.findHomography(points[found], moved[found], cv2.RANSAC, 5.0)
    else:
        matrix, _ = cv2.estimateAffinePartial2D(points[found], moved[found])
    return identity if matrix is None else matrix


def apply_matrix(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``image`` moved by ``matrix`` (2×3 affine or 3×3 homography), edges replicated."""
    import cv2
    size = (image.shape[1], image.shape[0])
    if matrix.shape == (3, 3):
        return cv2.warpPerspective(image, matrix, size, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(image, matrix, size, borderMode=cv2.BORDER_REPLICATE)


class HybridMotion:
    """``motion(image, frame)``: ``image`` (the picture carried into ``frame``) moved by
    the video's motion into ``frame``."""

    def __init__(self, settings: Mapping[str, Any], frames: list[Path]) -> None:
        self.kind = settings["hybrid_motion"]
        self.use_prev = settings["hybrid_motion_use_prev_img"]
        self.method = settings["hybrid_flow_method"]
        self.frames = frames
        self.size = (settings["W"], settings["H"])
        self.factor = settings.schedule("hybrid_flow_factor_schedule").values(
            settings["max_frames"])
        self.consistency = settings["hybrid_flow_consistency"]
        self.blur = settings["hybrid_consistency_blur"]
        self.extras: Any = None  # hybrid_composite.ExtraFrames: saves each flow when set
        # flow_source 'scene': the video's exact motion into a frame (engine.scene_flow).
        self.scene_flow: Callable[[int], np.ndarray] | None = None

    def video(self, index: int) -> np.ndarray:
        """Video frame ``index`` at the output size."""
        from .output import read_image
        return read_image(self.frames[index], self.size, "video_init_path")

    def __call__(self, image: np.ndarray, frame: int) -> np.ndarray:
        if frame < 1 or frame >= len(self.frames):
            return image
        target = self.video(frame)
        source = image if self.use_prev else self.video(frame - 1)
        if self.kind == "Optical Flow":
            flow = self.scene_flow(frame) if self.scene_flow is not None and not self.use_prev \
                else self.flow(source, target, frame)
            return warp(image, flow, self.factor[frame])
        return apply_matrix(image, transform_matrix(source, target, self.kind))

    def flow(self, source: np.ndarray, target: np.ndarray, frame: int) -> np.ndarray:
        """The flow from ``source`` to ``target``, held back where it is inconsistent."""
        if not self.consistency:
            flow = estimate(source, target, self.method)
        else:
            from .flow_consistency import reliable_flow
            flow, mask = reliable_flow(source, target, self.method, self.blur)
            if self.extras is not None:
                self.extras.save_consistency(frame, mask)
        if self.extras is not None:
            self.extras.save_flow(frame, flow)
        return flow


def hybrid_set_up(settings: Any, frames: list[Path], progress: Progress) -> HybridMotion | None:
    """The run's hybrid motion (None when off) along ``frames`` (the clip,
    ``engine.hybrid_clip``), its first frame read so a bad clip fails before any frame
    is written."""
    if settings["hybrid_motion"] == "None":
        return None
    check_hybrid(settings)
    if len(frames) < settings["max_frames"]:
        progress.warning(f"video_init_path: the clip gives {len(frames)} frames and "
                         f"max_frames is {settings['max_frames']}; later frames get no "
                         "hybrid motion", key="video_init_path")
    motion = HybridMotion(settings, frames)
    motion.video(0)
    return motion
