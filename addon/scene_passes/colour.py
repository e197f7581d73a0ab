"""Scene colour frames: the scene rendered with the user's own engine and settings,
``{k:05d}.png`` at the engine's W×H (the Video Input frames, or frame 0's init image).

From the modal operator each frame goes through Blender's render job
(``BackgroundRender``, as F12 does), so a long render never freezes the UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import bpy

from .. import bake, compat
from .driver import ScenePass
from .render import (Change, apply, at_frame, frame_changes, render, restore, scene_pass,
                     temporarily)

LABEL = "scene frames"


def _colour_changes(scene, folder: str | Path, k: int) -> tuple[Path, list[Change]]:
    """The output file of colour frame k and what rendering it changes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = bake.render_size(scene)
    path = folder / f"{k:05d}.png"
    image = scene.render.image_settings
    return path, frame_changes(scene, width, height, path) + \
        compat.image_format_changes(image, "PNG") + \
        [(image, "color_mode", "RGB"), (image, "color_depth", "8")]


def render_colour_frame(scene, frame: int, k: int, folder: str | Path) -> Path:
    """Blender frame ``frame`` rendered with the user's settings as ``{folder}/{k:05d}.png``."""
    path, changes = _colour_changes(scene, folder, k)
    with temporarily(changes), at_frame(scene, frame):
        render(scene)
    return path


class BackgroundRender:
    """One colour frame rendered by Blender's render job, as F12 does: the UI runs on.

    The render settings it needs stay set while the job runs (the job reads
    them as it goes) and are restored when ``result()`` collects the frame.
    Without an event loop (``blender -b``) Blender renders at once instead.
    """

    def __init__(self, scene, frame: int, k: int, folder: str | Path) -> None:
        self.path, changes = _colour_changes(scene, folder, k)
        self._frame = (scene, scene.frame_current, scene.frame_subframe)
        self._saved = apply(changes)
        try:
            scene.frame_set(frame)
            started = bpy.ops.render.render("INVOKE_DEFAULT", write_still=True,
                                            scene=scene.name)
        except BaseException:
            self._restore()
            raise
        self._running = "RUNNING_MODAL" in started
        self._failed = not self._running and "FINISHED" not in started
        if not self._running:
            self._restore()

    def _restore(self) -> None:
        if self._saved is not None:
            restore(self._saved)
            scene, current, subframe = self._frame
            scene.frame_set(current, subframe=subframe)
            self._saved = None

    @property
    def done(self) -> bool:
        return not (self._running and bpy.app.is_job_running("RENDER"))

    def result(self) -> Path | None:
        self._restore()
        if self._failed:
            raise RuntimeError("Blender did not start the render (is another one running?)")
        return self.path if self.path.is_file() else None


def colour_pass(scene, folder: str | Path, *, setting: str = "render settings",
                frames: Sequence[int] | None = None) -> ScenePass:
    """Colour frames ``{folder}/{k:05d}.png`` for ``frames`` (default: the scene range).

    ``setting`` is what errors name (the option that asked for the frames).
    """
    return scene_pass(scene, folder, LABEL, render_colour_frame, setting, frames,
                       background=BackgroundRender)
