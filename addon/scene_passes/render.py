"""What every scene pass shares: temporary render settings, restored after each frame,
the frame's camera and size, and a pass over the scene range.

Every setting a frame changes (engine, samples, resolution, filepath, file
format, camera, world, material override, frame …) is restored after that
frame (a background render's when it is collected), so between frames the
scene is exactly the user's. The sequencer is switched off while rendering, or
the Deforum strips in the VSE would be rendered instead of the scene.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bpy

from .. import bake, compat
from .driver import ScenePass

Change = tuple[Any, str, Any]


def apply(changes: Sequence[Change]) -> list[Change]:
    """Set each (owner, attribute, value); returns the old values for ``restore``.

    Every old value is read before anything is set (setting a file format
    adjusts its colour depth); ``restore`` sets them back in the same order,
    not reverse: a container before its contents (5.0's media type before the
    file format, the format before its colour depth), both ways.
    """
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in changes]
    try:
        for owner, name, value in changes:
            setattr(owner, name, value)
    except BaseException:
        restore(saved)
        raise
    return saved


def restore(saved: Sequence[Change]) -> None:
    for owner, name, value in saved:
        setattr(owner, name, value)


@contextmanager
def temporarily(changes: list[Change]) -> Iterator[None]:
    """``changes`` applied for the duration of the block."""
    saved = apply(changes)
    try:
        yield
    finally:
        restore(saved)


@contextmanager
def at_frame(scene, frame: int) -> Iterator[None]:
    current, subframe = scene.frame_current, scene.frame_subframe
    try:
        scene.frame_set(frame)
        yield
    finally:
        scene.frame_set(current, subframe=subframe)


def view_layer(scene):
    """The view layer the user looks at when it is this scene's, else the first."""
    layer = getattr(bpy.context, "view_layer", None)
    names = {v.name for v in scene.view_layers}
    return layer if layer is not None and layer.name in names and \
        bpy.context.scene == scene else scene.view_layers[0]


def exr_pass_changes(scene, use_pass: str) -> list[Change]:
    """What adds the view layer's ``use_pass`` (e.g. ``"use_pass_vector"``) to a render
    written as one uncompressed 32-bit multi-layer EXR, every pass in it (the form
    ``exr.read_channels`` reads)."""
    image = scene.render.image_settings
    return [(view_layer(scene), use_pass, True)] + compat.multilayer_exr_changes(image) + [
        (image, "color_depth", "32"), (image, "exr_codec", "NONE")]


def frame_changes(scene, width: int, height: int, filepath: Path) -> list[Change]:
    """What both passes set: the engine's W×H, the Deforum camera, the output file.

    Markers that bind cameras are unbound meanwhile: Blender's render would otherwise
    switch to theirs, away from the camera the motion was baked from."""
    r = scene.render
    unbound = [(m, "camera", None) for m in scene.timeline_markers if m.camera]
    return [(r, "resolution_x", width), (r, "resolution_y", height),
            (r, "resolution_percentage", 100), (r, "use_border", False),
            (r, "use_sequencer", False), (r, "filepath", str(filepath))] + unbound + [
            (scene, "camera", bake.scene_camera(scene))]


def render(scene, layer: str | None = None) -> None:
    kwargs = {"layer": layer} if layer else {}
    bpy.ops.render.render(write_still=True, scene=scene.name, **kwargs)


def read_rgba(path: Path, width: int, height: int):
    import numpy as np

    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        image.colorspace_settings.is_data = True  # the numbers as written, no conversion
        if tuple(image.size) != (width, height):
            raise RuntimeError(f"the depth render is {tuple(image.size)}, expected "
                               f"{(width, height)}")
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels


def scene_pass(scene, folder: str | Path, label: str, render_frame, setting: str,
                frames: Sequence[int] | None = None, background=None) -> ScenePass:
    """A pass over ``frames`` (default: the scene range); each step finds the scene
    again by name (undo-safe). ``background(scene, frame, k, folder)`` starts a
    frame in Blender's render job (the modal path)."""
    name = scene.name

    def target():
        found = bpy.data.scenes.get(name)
        if found is None:
            raise RuntimeError(f"the scene {name!r} no longer exists")
        return found

    def step(k: int, frame: int) -> Path:
        return render_frame(target(), frame, k, folder)

    def start(k: int, frame: int):
        return background(target(), frame, k, folder)

    if frames is None:
        frames = range(scene.frame_start, scene.frame_end + 1)
    return ScenePass(label, frames, step, setting=setting,
                     start=start if background is not None else None)
