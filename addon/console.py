"""Progress lines for headless runs (``blender -b``, farms, the demo): one per frame.

Without a UI the status bar is invisible, so the blocking render prints each
scene-pass frame and each engine frame as it arrives, flushed at once so a
farm's log shows the run moving.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .runner import Run


class FramePrinter:
    """``on_progress`` of ``runner.run_blocking``: prints what is new since the last call."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.printed: set[int] = set()  # engine frames
        self.passes: dict[int, int] = {}  # scene pass (its place in the run) → frames done

    def __call__(self, run: Run) -> None:
        for place, scene_pass in enumerate(run.scene_passes):
            if scene_pass.done and self.passes.get(place) != scene_pass.done:
                self.passes[place] = scene_pass.done
                self._line(scene_pass.text)
        job = run.job
        total = job.total or run.frames
        for frame in sorted((f for f in job.frames if f.index not in self.printed),
                            key=lambda f: f.index):
            self.printed.add(frame.index)
            self._line(f"frame {frame.index + 1}/{total}: {frame.path}")

    def _line(self, text: str) -> None:
        print(f"Deforum: {text}", file=self.stream or sys.stdout, flush=True)
