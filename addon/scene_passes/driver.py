"""The driver of a scene pass, without bpy: one frame per step, cancellable.

A ``ScenePass`` renders one file per frame of the scene range, one frame per
``advance()`` call, so the modal operator does one frame per timer tick (the
UI stays responsive between frames) while ``execute()`` runs them all.
Engine frame k is Blender frame ``start + k`` and is written as ``{k:05d}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol


class Pending(Protocol):
    """A frame being rendered by Blender's own render job while the UI runs on."""

    @property
    def done(self) -> bool: ...

    def result(self) -> Path | None:
        """The written file (None: the user stopped the render); restores the scene."""


class ScenePass:
    """Render ``step(k, frame)`` for each Blender frame; errors stop the pass with a message.

    With ``start`` (returns a ``Pending``), ``advance(background=True)`` hands
    each frame to Blender's render job and collects it on a later call, so the
    UI never waits for a render; ``step`` is the blocking way (``execute()``).
    """

    def __init__(self, label: str, frames: Sequence[int],
                 step: Callable[[int, int], Path], *, setting: str,
                 start: Callable[[int, int], Pending] | None = None) -> None:
        self.label = label          # "scene depth", "scene frames"
        self.frames = list(frames)
        self.step = step
        self.start = start
        self.setting = setting      # the setting named in error messages
        self.done = 0
        self.cancelled = False
        self.error = ""
        self.paths: list[Path] = []
        self._pending: Pending | None = None

    @property
    def total(self) -> int:
        return len(self.frames)

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    @property
    def stopped(self) -> bool:
        """Cancelled or failed, with no render of Blender's still to collect."""
        return (self.cancelled or bool(self.error)) and self._pending is None

    @property
    def running(self) -> bool:
        return self._pending is not None or not (self.complete or self.cancelled or self.error)

    @property
    def text(self) -> str:
        return f"Rendering {self.label} {self.done}/{self.total}"

    def _failed(self, exc: Exception) -> None:
        frame = self.frames[self.done]
        self.error = (f"{self.setting}: rendering {self.label} failed at frame {frame} "
                      f"({self.done + 1}/{self.total}): {exc}")

    def advance(self, background: bool = False) -> None:
        """Render the next frame (nothing once complete or stopped); ``background``:
        start it in Blender's render job, or collect the one started before."""
        if self._pending is not None:
            if not self._pending.done:
                return
            pending, self._pending = self._pending, None
            try:
                path = pending.result()
            except (RuntimeError, OSError, ValueError) as exc:
                self._failed(exc)
                return
            if path is None:  # stopped in Blender's render window
                self.cancelled = True
                return
            self.paths.append(path)
            self.done += 1
            return
        if not self.running:
            return
        frame = self.frames[self.done]
        try:
            if background and self.start is not None:
                self._pending = self.start(self.done, frame)
                return
            self.paths.append(self.step(self.done, frame))
        except (RuntimeError, OSError, ValueError) as exc:
            self._failed(exc)
            return
        self.done += 1

    def run(self) -> None:
        while self.running:
            self.advance()

    def cancel(self) -> None:
        """Stop before the next frame (a frame in Blender's render job finishes first)."""
        if self.running:
            self.cancelled = True
