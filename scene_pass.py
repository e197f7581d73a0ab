"""Per-frame passes over the scene range, without bpy: the driver and the pixel maths.

A ``ScenePass`` renders one file per frame of the scene range, one frame per
``advance()`` call, so the modal operator does one frame per timer tick (the
UI stays responsive between frames) while ``execute()`` runs them all.
Engine frame k is Blender frame ``start + k`` and is written as ``{k:05d}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

FAR = np.inf  # depth of pixels that hit nothing (the engine reads +inf as far away)


class ScenePass:
    """Render ``step(k, frame)`` for each Blender frame; errors stop the pass with a message."""

    def __init__(self, label: str, frames: Sequence[int],
                 step: Callable[[int, int], Path], *, setting: str) -> None:
        self.label = label          # "scene depth", "scene frames"
        self.frames = list(frames)
        self.step = step
        self.setting = setting      # the setting named in error messages
        self.done = 0
        self.cancelled = False
        self.error = ""
        self.paths: list[Path] = []

    @property
    def total(self) -> int:
        return len(self.frames)

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    @property
    def stopped(self) -> bool:
        return self.cancelled or bool(self.error)

    @property
    def running(self) -> bool:
        return not self.complete and not self.stopped

    @property
    def text(self) -> str:
        return f"Rendering {self.label} {self.done}/{self.total}"

    def advance(self) -> None:
        """Render the next frame (nothing once complete or stopped)."""
        if not self.running:
            return
        frame = self.frames[self.done]
        try:
            self.paths.append(self.step(self.done, frame))
        except (RuntimeError, OSError, ValueError) as exc:
            self.error = (f"{self.setting}: rendering {self.label} failed at frame {frame} "
                          f"({self.done + 1}/{self.total}): {exc}")
            return
        self.done += 1

    def run(self) -> None:
        while self.running:
            self.advance()

    def cancel(self) -> None:
        if self.running:
            self.cancelled = True


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
