"""Exact optical flow supplied with the job (``flow_source = scene``), in place of estimates.

``scene_flow_path`` holds ``{k:05d}.npy``: float32 H×W×2, the flow from frame
k to frame k+1 (where each pixel of frame k is found in frame k+1, in pixels,
x right, y down), as the Blender add-on renders it; the add-on also writes
``{k:05d}_back.npy`` (the same step backwards: where each pixel of frame k+1
was in frame k) and ``{k:05d}_depth.npy`` (frame k's view-axis depth, +inf
for sky), which a folder may hold (all of them) or not (none).  The engine
uses them wherever it would estimate the motion of the scene:

* hybrid motion "Optical Flow": the scene's motion from frame f−1 to f (file
  f−1) less the camera warp's own flow (2D: its transform; 3D: the pinhole
  camera step with frame f−1's scene depth; 3D without scene depth: nothing is
  taken out), so that the warp and hybrid motion together move the picture
  once, as the scene moves: objects that move on their own included.  (The
  webui adds the whole video flow on top of the warp; with the scene as the
  video that would move the picture twice as far as the camera.)  With
  ``hybrid_motion_use_prev_img`` the flow runs from the carried picture to the
  video, which is not the scene's motion: it is estimated;
* optical-flow cadence: the two keyframes s−c and s have each been carried to
  the tween's frame by the camera warp and hybrid motion.  What still
  separates them is the scene's motion the carrying did not apply: per frame
  j, the scene's flow less the warp's own flow, times (1 − the hybrid flow
  factor) when hybrid motion follows the scene, chained from s−c to s along
  the scene's flow.  It is measured on frame s−c's pixels and applied on the
  tween's: exact for a still camera; with a moving one, a moving object's
  flow is offset by how far the camera moved it since s−c.  With backward
  flows and depth, the way back from s to s−c is chained the same way on
  frame s's pixels, and ``scene_tween`` shows at each in-between pixel only
  the keyframe(s) whose surface is in front there (each keyframe's own depth
  stands for its carried picture's); without, both keyframes are moved along
  the forward flow alone (``meet``) and blended.

Optical-flow redo measures the flow from a keyframe's init to its own
throw-away diffusion, which is not scene motion: it keeps estimating.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .camera_flow import step_back_flow, step_flow
from .depth import FAR_AWAY
from .errors import InputError, SettingsError
from .output import FRAME_DIGITS, write_atomic
from .paths import local_path
from .scene_tween import SAME_SURFACE, occlusion_tween

FLOW_SOURCES = ("estimate", "scene")
KEY = "scene_flow_path"


def scene_flow_file(folder: str | Path, frame: int, kind: str = "") -> Path:
    """``{frame:05d}.npy`` (the flow frame → frame+1), ``{frame:05d}_back.npy`` (kind
    'back': the same step backwards, frame+1 → frame, on frame+1's pixels) or
    ``{frame:05d}_depth.npy`` (kind 'depth': frame's view-axis depth)."""
    return Path(folder) / f"{frame:0{FRAME_DIGITS}d}{'_' + kind if kind else ''}.npy"


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return write_atomic(path, buffer.getvalue(), replace=True)


def write_scene_flow(folder: str | Path, frame: int, flow: np.ndarray, *,
                     back: bool = False) -> Path:
    """Write the flow frame → frame+1 (``back``: frame+1 → frame), atomically."""
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"a flow is H×W×2, got shape {flow.shape}")
    return _write(scene_flow_file(folder, frame, "back" if back else ""), flow)


def write_flow_depth(folder: str | Path, frame: int, depth: np.ndarray) -> Path:
    """Write frame's depth (H×W, +inf where nothing is hit) as float16: only which
    surface is nearer is read from it, and half floats keep that."""
    with np.errstate(over="ignore"):
        depth = np.asarray(depth, dtype=np.float32).astype(np.float16)
    if depth.ndim != 2:
        raise ValueError(f"a depth is H×W, got shape {depth.shape}")
    return _write(scene_flow_file(folder, frame, "depth"), depth)


def _read(folder: str | Path, frame: int, kind: str, shape: tuple[int, ...],
          what: str) -> np.ndarray:
    """A float32 array of ``shape`` from the folder's file ``what`` describes; a missing,
    unreadable or wrongly shaped file, NaN, an infinite flow or a negative depth is an
    InputError naming scene_flow_path and the file."""
    path = scene_flow_file(local_path(str(folder), KEY), frame, kind)
    if not path.is_file():
        raise InputError(f"{KEY}: no {what}: {path} not found", key=KEY, value=str(path))
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{KEY}: unreadable .npy ({exc}): {path}", key=KEY,
                         value=str(path)) from None
    if array.shape != shape or not np.issubdtype(array.dtype, np.floating):
        size = "×".join(str(n) for n in shape)
        raise InputError(f"{KEY}: expected a float {size} array ({what}), got {array.dtype} "
                         f"{array.shape}: {path}", key=KEY, value=str(path))
    array = array.astype(np.float32)
    bad = np.isnan(array).any() or (np.isinf(array).any() if kind != "depth"
                                    else (array < 0).any())
    if bad:
        problem = "negative or NaN values" if kind == "depth" else "NaN or infinite values"
        raise InputError(f"{KEY}: the {what} has {problem}: {path}", key=KEY, value=str(path))
    return array


def read_scene_flow(folder: str | Path, frame: int, size: tuple[int, int], *,
                    back: bool = False) -> np.ndarray:
    """The flow frame → frame+1 (``back``: frame+1 → frame), float32 H×W×2 for ``size``
    = (W, H); a bad file is an InputError naming scene_flow_path."""
    width, height = size
    step = f"{frame + 1} → {frame}" if back else f"{frame} → {frame + 1}"
    return _read(folder, frame, "back" if back else "", (height, width, 2),
                 f"flow for frame {step}")


def read_flow_depth(folder: str | Path, frame: int, size: tuple[int, int]) -> np.ndarray:
    """Frame's depth from the flow folder, float32 H×W, +inf (nothing hit) as ``FAR_AWAY``."""
    width, height = size
    return np.minimum(_read(folder, frame, "depth", (height, width), f"depth of frame {frame}"),
                      FAR_AWAY)


def _sample(field: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``field`` (H×W×C) read at ``positions`` (H×W×2 pixels), bilinear, edges held."""
    import cv2
    return cv2.remap(field, positions[..., 0], positions[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def chain(flows: list[np.ndarray], rests: list[np.ndarray] | None = None,
          depths: list[np.ndarray] | None = None) -> np.ndarray:
    """The flow over consecutive steps (each pixel followed from step to step); with
    ``rests``, the sum of each step's ``rests`` where the pixel is at that step.  With
    ``depths`` (the depth of each step's first frame), a pixel that something nearer
    hides at a step keeps its last motion: the flow where it is belongs to what hides it."""
    height, width = flows[0].shape[:2]
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32),
                                np.arange(height, dtype=np.float32)), axis=-1)
    import cv2
    position, total = grid.copy(), np.zeros_like(grid)
    own = last = None
    for j, flow in enumerate(flows):
        step = _sample(flow, position)
        rest = _sample(rests[j], position) if rests is not None else step
        if depths is not None:
            here = cv2.remap(depths[j], position[..., 0], position[..., 1], cv2.INTER_NEAREST,
                             borderMode=cv2.BORDER_REPLICATE)
            own = here if own is None else own
            hidden = (here * np.float32(1.0 + SAME_SURFACE) < own)[..., None]
            if last is not None:
                step, rest = np.where(hidden, last[0], step), np.where(hidden, last[1], rest)
            own = np.where(hidden[..., 0], own, here)
        last = step, rest
        total += rest
        position += step
    return position - grid if rests is None else total


# own(j, back): the flow of the run's camera warp from frame j into j+1 (back: from j+1
# back to j); None: not known.
OwnFlow = Callable[[int, bool], np.ndarray | None]


class SceneFlow:
    """The run's scene flow: per-step flows read once, and the flows the loop asks for.

    ``own`` is the camera warp's flow (``own(j, True)``: the same step backwards);
    ``follow[f]`` the hybrid flow factor into frame f when hybrid motion follows the
    scene (None when it does not); ``both``: the folder also holds each step's backward
    flow and each frame's depth, and cadence tweens see what is in front."""

    def __init__(self, folder: str, size: tuple[int, int], own: OwnFlow | None = None,
                 follow: list[float] | None = None, both: bool = False) -> None:
        self.folder, self.size, self.own, self.follow = folder, size, own, follow
        self.both = both
        self._recent: dict[tuple[int, str], np.ndarray] = {}
        self._chained: dict[tuple[int, int, bool], np.ndarray] = {}  # the current block's

    def _load(self, frame: int, kind: str) -> np.ndarray:
        """A file of the folder; the last few are kept (cadence reads each c times)."""
        if (frame, kind) not in self._recent:
            if len(self._recent) >= 48:
                del self._recent[min(self._recent)]
            self._recent[frame, kind] = read_flow_depth(self.folder, frame, self.size) \
                if kind == "depth" else read_scene_flow(self.folder, frame, self.size,
                                                        back=kind == "back")
        return self._recent[frame, kind]

    def step(self, frame: int, back: bool = False) -> np.ndarray:
        """The flow frame → frame+1 (``back``: frame+1 → frame)."""
        return self._load(frame, "back" if back else "")

    def depth(self, frame: int) -> np.ndarray:
        return self._load(frame, "depth")

    def _rest(self, frame: int, back: bool = False) -> np.ndarray:
        """The scene's flow frame → frame+1 (``back``: backwards) less the camera warp's
        own (where known)."""
        own = self.own(frame, back) if self.own is not None else None
        return self.step(frame, back) if own is None else self.step(frame, back) - own

    def into(self, frame: int) -> np.ndarray:
        """Hybrid motion's flow into ``frame``: what the scene moves from frame−1 beyond
        the camera warp, so that warp and hybrid motion together move it as the scene."""
        return self._rest(frame - 1)

    def cadence(self, older: int, newer: int, back: bool = False) -> np.ndarray:
        """What separates keyframes ``older`` and ``newer`` once both are carried to the
        same frame: the scene's motion between them less what the carrying did (the
        warp's own flow, and the share of the rest that hybrid motion followed); on
        older's pixels, or with ``back`` the way back on newer's.  Every tween of a block
        asks for the same two chains: they are kept until the next block's."""
        key = (older, newer, back)
        if key not in self._chained:
            if any(k[:2] != key[:2] for k in self._chained):
                self._chained.clear()
            self._chained[key] = self._chain(older, newer, back)
        return self._chained[key]

    def _chain(self, older: int, newer: int, back: bool) -> np.ndarray:
        frames = range(newer - 1, older - 1, -1) if back else range(older, newer)
        rests = [self._rest(j, back) for j in frames]
        if self.follow is not None:
            rests = [rest * np.float32(1.0 - self.follow[j + 1]) if j + 1 < len(self.follow)
                     else rest for j, rest in zip(frames, rests)]
        depths = [self.depth(j + 1 if back else j) for j in frames] if self.both else None
        return chain([self.step(j, back) for j in frames], rests, depths)

    def tween(self, older: np.ndarray, newer: np.ndarray, weight: float,
              keyframes: tuple[int, int], factor: float) -> tuple[np.ndarray, np.ndarray]:
        """Both keyframes moved to the in-between position ``weight`` along the flow between
        them (× ``factor``), as ``flow.flow_tween`` does with an estimated flow; with
        ``both``, what is hidden at that position left out (``scene_tween``)."""
        forward = self.cadence(*keyframes)
        moved = meet(older, newer, forward, weight, factor)
        if not self.both:
            return moved
        return occlusion_tween(older, newer, forward, self.cadence(*keyframes, back=True),
                               (self.depth(keyframes[0]), self.depth(keyframes[1])),
                               weight, factor, moved)


def meet(older: np.ndarray, newer: np.ndarray, flow: np.ndarray, weight: float,
         factor: float) -> tuple[np.ndarray, np.ndarray]:
    """``older`` and ``newer`` moved to ``weight`` of the way along ``flow`` (measured on
    ``older``'s pixels).  Each in-between pixel x is traced back to the point p of
    ``older`` that arrives there (p = x − weight·flow(p), solved by a few fixed-point
    steps): an exact flow is followed exactly, where reading the flow at x itself (fine
    for a smooth estimate) would tear it at a moving object's edge."""
    import cv2
    height, width = flow.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32),
                                np.arange(height, dtype=np.float32)), axis=-1)
    ahead, behind = np.float32(weight * factor), np.float32((1.0 - weight) * factor)
    source = grid - ahead * flow
    for _ in range(4):
        source = grid - ahead * _sample(flow, source)
    travel = _sample(flow, source)
    target = grid + behind * travel

    def read(image: np.ndarray, at: np.ndarray) -> np.ndarray:
        return cv2.remap(image, at[..., 0], at[..., 1], cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT_101)
    return read(older, source), read(newer, target)


def warp_flow(motion: Any, depth: Callable[[int], np.ndarray] | None) -> OwnFlow:
    """``own(j, back)``: the flow of the run's camera warp from frame j into j+1, or with
    ``back`` from j+1 back to j (2D: its transform; 3D: the pinhole step with the scene
    depth, ``depth``, of the frame it starts from)."""
    def own(j: int, back: bool = False) -> np.ndarray | None:
        if motion.mode == "2D":
            matrix = motion.matrix(j + 1)
            return _matrix_flow(np.linalg.inv(matrix) if back else matrix, motion.size)
        if motion.mode == "3D" and depth is not None:
            if back:
                return step_back_flow(depth(j + 1), motion.camera_step(j + 1))
            return step_flow(depth(j), motion.camera_step(j + 1))
        return None
    return own


def _matrix_flow(matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Where a 3×3 source→destination transform moves each pixel, minus where it was."""
    width, height = size
    x, y = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    moved = np.stack([x, y, np.ones_like(x)], axis=-1) @ np.asarray(matrix).T
    with np.errstate(divide="ignore", invalid="ignore"):
        flow = np.stack([moved[..., 0] / moved[..., 2] - x, moved[..., 1] / moved[..., 2] - y],
                        axis=-1)
    return np.nan_to_num(flow, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def scene_flow_set_up(settings: Mapping[str, Any], motion: Any,
                      depth: Callable[[int], np.ndarray] | None) -> SceneFlow | None:
    """The run's scene flow (None with ``flow_source`` 'estimate'); its folder, that every
    step's file is there, and the first file are checked before any frame is written."""
    if settings["flow_source"] != "scene":
        return None
    folder = settings[KEY]
    if not folder:
        raise SettingsError(f"{KEY}: flow_source is 'scene' but no folder of flow files is "
                            "set", key=KEY, value=folder)
    if not local_path(folder, KEY).is_dir():
        raise InputError(f"{KEY}: folder not found: {folder}", key=KEY, value=folder)
    if settings["animation_mode"] == "3D" and depth is None \
            and settings["optical_flow_cadence"] != "None":
        raise SettingsError("flow_source: 'scene' cadence in 3D needs depth_source 'scene' "
                            "(the camera's own motion is taken out with the scene's depth)",
                            key="flow_source", value="scene")
    hybrid = settings["hybrid_motion"] == "Optical Flow" \
        and not settings["hybrid_motion_use_prev_img"]
    follow = settings.schedule("hybrid_flow_factor_schedule").values(settings["max_frames"]) \
        if hybrid else None
    both = scene_flow_file(local_path(folder, KEY), 0, "back").is_file()
    flows = SceneFlow(folder, (settings["W"], settings["H"]), warp_flow(motion, depth), follow,
                      both)
    _check_files(flows, settings["max_frames"])
    return flows


def _check_files(flows: SceneFlow, frames: int) -> None:
    """Every step's file is there (with backward flows, every step's and every frame's
    depth too), and the first ones read: else the error that names the file."""
    kinds = ("", "back", "depth") if flows.both else ("",)
    for kind in kinds:
        for frame in range(frames - (kind != "depth")):
            if not scene_flow_file(local_path(flows.folder, KEY), frame, kind).is_file():
                flows._load(frame, kind)
    if frames > 1:
        for kind in kinds:
            flows._load(0, kind)
