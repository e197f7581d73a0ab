"""The 2D/3D animation loop (product.md §5), here without diffusion.

The loop is written around a ``generate(init, frame)`` step so that the
diffusion engine plugs in where the motion preview passes the image through.
Order for a keyframe F > 0: warp the previous keyframe → colour coherence
(reference = the first warped frame) → contrast → generate.  With cadence c,
frame f (s = c·⌊f/c⌋) is the blend of the keyframes diffused at s−c and s, each
warped forward frame by frame, weight (f − s + 1)/c on the newer one.  Unlike
the reference, the last block is written too, so every frame exists.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .color import match_colors
from .errors import Cancelled, InputError
from .motion import Motion
from .output import frame_path, read_image, write_png
from .progress import Progress
from .testcard import make_test_card

Generate = Callable[[np.ndarray, int], np.ndarray]


class CancelToken:
    """Set by SIGINT/SIGTERM or by the appearance of a cancel file."""

    def __init__(self, cancel_file: str | Path | None = None) -> None:
        self.cancel_file = Path(cancel_file) if cancel_file else None
        self._flag = False

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            self._flag = True
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def request(self) -> None:
        self._flag = True

    @property
    def requested(self) -> bool:
        if not self._flag and self.cancel_file is not None and self.cancel_file.exists():
            self._flag = True
        return self._flag

    def check(self) -> None:
        if self.requested:
            raise Cancelled("cancelled")


def first_image(settings: Mapping[str, Any]) -> np.ndarray:
    """Frame 0's starting picture: the init image when used, else the test card."""
    size = (settings["W"], settings["H"])
    if settings["use_init"] and settings["init_image"]:
        path = settings["init_image"]
        if "://" in path:
            raise InputError(f"init_image: {path!r} is a URL; this engine never downloads, "
                             "give a local file", key="init_image", value=path)
        return read_image(path, size, "init_image")
    return make_test_card(*size)


def passthrough(init: np.ndarray, frame: int) -> np.ndarray:
    """The motion preview's 'diffusion': keep the prepared image as it is."""
    return init


def render_animation(settings: Mapping[str, Any], folder: Path, timestring: str,
                     progress: Progress, cancel: CancelToken,
                     generate: Generate = passthrough) -> int:
    """Render frames 0…max_frames−1 into ``folder``; returns the number written."""
    frames = settings["max_frames"]
    cadence = max(1, min(settings["diffusion_cadence"], frames))
    motion = Motion(settings, frames)
    contrast = settings.schedule("contrast_schedule").values(frames)
    coherence = settings["color_coherence"]
    reference: np.ndarray | None = None
    written = 0

    def emit(index: int, image: np.ndarray, started: float) -> None:
        nonlocal written
        path = frame_path(folder, timestring, index)
        write_png(path, image)
        written += 1
        progress.frame(index, str(path), time.monotonic() - started)

    started = time.monotonic()
    newest = generate(first_image(settings), 0)   # keyframe diffused at s
    older: np.ndarray | None = None                # keyframe diffused at s − c, moved to s−1
    for s in range(0, frames, cadence):
        if s > 0:
            cancel.check()
            started = time.monotonic()
            # ``newest`` has been carried to s−1; one more step gives both the
            # older tween buffer and the init of keyframe s.
            older = motion.warp(newest, s)
            init = older
            if coherence != "None":
                if reference is None:
                    reference = init
                else:
                    init = match_colors(init, reference, coherence)
            c = contrast[s]
            if c != 1.0:
                init = np.clip(np.rint(init.astype(np.float32) * c), 0, 255).astype(np.uint8)
            newest = generate(init, s)
        carried = newest
        for f in range(s, min(s + cadence, frames)):
            if f > s:
                cancel.check()
                started = time.monotonic()
                carried = motion.warp(carried, f)
                older = motion.warp(older, f) if older is not None else None
            w = (f - s + 1) / cadence
            if older is None or w >= 1.0:
                image = carried
            else:
                blend = older.astype(np.float32) * (1 - w) + carried.astype(np.float32) * w
                image = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
            emit(f, image, started)
        newest = carried
    return written
