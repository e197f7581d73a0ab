"""Render the scene camera's depth (or colour) for every frame of the scene range.

Depth route — the cheapest that is exact and works on bpy 4.2, 4.5 and 5.0
without the compositor (5.0 replaced ``scene.node_tree``): Cycles, 1 sample,
a 0.01 px box filter (the one ray goes through the pixel centre, as the warp
assumes), no denoising, and a temporary view-layer material override whose
emission strength is Camera Data › View Z Depth (depth along the view axis,
not ray length). The film is transparent, so rays that hit nothing (alpha 0)
become far depth (+inf), never 0. The frame is written as a float32 EXR, read
back through ``bpy.data.images`` and saved with ``engine.depth.write_scene_depth``
as ``{k:05d}.npy`` (engine frame k = Blender frame start + k).

Masks (stylising only some objects) are the same render with every object
outside the chosen collection a holdout: alpha = what the camera sees of the
collection, written as a grey ``{k:05d}.png``.

Colour frames use the user's own engine and settings, written as
``{k:05d}.png`` at the engine's W×H (the sequencer is switched off, or the
Deforum strips in the VSE would be rendered instead of the scene). From the
modal operator each one goes through Blender's render job (``BackgroundRender``,
as F12 does), so a long render never freezes the UI.

Every setting a frame changes (engine, samples, resolution, filepath, file
format, camera, world, material override, frame …) is restored after that
frame (a background render's when it is collected), so between frames the
scene is exactly the user's.

Measured with bpy 5.0.1 on a shared 2-CPU machine: about 50 ms/frame for depth at
512×512 (70 ms under load; a cube and a plane, 8 frames; frame_set, render, EXR
round trip and .npy included).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bpy

from . import bake, compat
from ..engine.depth import write_scene_depth
from .scene_pass import ScenePass, depth_from_rgba, mask_rgba

DEPTH_LABEL = "scene depth"
COLOUR_LABEL = "scene frames"
MASK_LABEL = "scene masks"
Change = tuple[Any, str, Any]


def _apply(changes: Sequence[Change]) -> list[Change]:
    """Set each (owner, attribute, value); returns the old values for ``_restore``.

    Every old value is read before anything is set (setting a file format
    adjusts its colour depth); ``_restore`` sets them back in the same order,
    not reverse: a container before its contents (5.0's media type before the
    file format, the format before its colour depth), both ways.
    """
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in changes]
    try:
        for owner, name, value in changes:
            setattr(owner, name, value)
    except BaseException:
        _restore(saved)
        raise
    return saved


def _restore(saved: Sequence[Change]) -> None:
    for owner, name, value in saved:
        setattr(owner, name, value)


@contextmanager
def _temporarily(changes: list[Change]) -> Iterator[None]:
    """``changes`` applied for the duration of the block."""
    saved = _apply(changes)
    try:
        yield
    finally:
        _restore(saved)


@contextmanager
def _at_frame(scene, frame: int) -> Iterator[None]:
    current, subframe = scene.frame_current, scene.frame_subframe
    try:
        scene.frame_set(frame)
        yield
    finally:
        scene.frame_set(current, subframe=subframe)


def _view_layer(scene):
    """The view layer the user looks at when it is this scene's, else the first."""
    layer = getattr(bpy.context, "view_layer", None)
    names = {v.name for v in scene.view_layers}
    return layer if layer is not None and layer.name in names and \
        bpy.context.scene == scene else scene.view_layers[0]


def _frame_changes(scene, width: int, height: int, filepath: Path) -> list[Change]:
    """What both passes set: the engine's W×H, the Deforum camera, the output file."""
    r = scene.render
    return [(r, "resolution_x", width), (r, "resolution_y", height),
            (r, "resolution_percentage", 100), (r, "use_border", False),
            (r, "use_sequencer", False), (r, "filepath", str(filepath)),
            (scene, "camera", bake.scene_camera(scene))]


def _depth_material():
    """Emission = View Z Depth (white), so the render's R channel is metric planar depth."""
    material = compat.node_material("Deforum Scene Depth")
    tree = material.node_tree
    tree.nodes.clear()
    camera = tree.nodes.new("ShaderNodeCameraData")
    emission = tree.nodes.new("ShaderNodeEmission")
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    emission.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    tree.links.new(camera.outputs["View Z Depth"], emission.inputs["Strength"])
    tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
    return material


def _depth_changes(scene, view_layer, material) -> list[Change]:
    r, cycles, image = scene.render, scene.cycles, scene.render.image_settings
    cam = bake.scene_camera(scene)
    changes = [(r, "engine", "CYCLES"), (r, "use_motion_blur", False),
               (r, "film_transparent", True), (r, "use_compositing", False),
               (cycles, "samples", 1), (cycles, "use_adaptive_sampling", False),
               (cycles, "use_denoising", False), (cycles, "pixel_filter_type", "BOX"),
               (cycles, "filter_width", 0.01), (cycles, "film_exposure", 1.0),
               (cycles, "sample_clamp_direct", 0.0), (cycles, "max_bounces", 0),
               (cam.data.dof, "use_dof", False), (scene, "world", None),
               (view_layer, "material_override", material)]
    if hasattr(view_layer, "samples"):  # a per-layer sample count overrides the scene's
        changes.append((view_layer, "samples", 0))
    return changes + compat.image_format_changes(image, "OPEN_EXR") + [
        (image, "color_mode", "RGBA"), (image, "color_depth", "32"),
        (image, "exr_codec", "ZIP")]


def _render(scene, layer: str | None = None) -> None:
    kwargs = {"layer": layer} if layer else {}
    bpy.ops.render.render(write_still=True, scene=scene.name, **kwargs)


def _read_rgba(path: Path, width: int, height: int):
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


def _depth_render(scene, frame: int, k: int, folder: Path, extra: Sequence[Change] = ()):
    """(bottom-up RGBA floats, W, H) of the depth render of Blender frame ``frame``."""
    if not hasattr(scene, "cycles"):  # the Cycles add-on registers scene.cycles
        raise RuntimeError("scene depth needs Cycles, which is not available in this Blender")
    folder.mkdir(parents=True, exist_ok=True)
    width, height = bake.render_size(scene)
    exr = folder / f".{k:05d}.render.exr"
    view_layer = _view_layer(scene)
    material = _depth_material()
    try:
        changes = _frame_changes(scene, width, height, exr) + \
            _depth_changes(scene, view_layer, material) + list(extra)
        with _temporarily(changes), _at_frame(scene, frame):
            _render(scene, view_layer.name)
        pixels = _read_rgba(exr, width, height)
    finally:
        bpy.data.materials.remove(material)
        exr.unlink(missing_ok=True)
    return pixels, width, height


def render_depth_frame(scene, frame: int, k: int, folder: str | Path) -> Path:
    """Blender frame ``frame``'s view-axis depth as ``{folder}/{k:05d}.npy``."""
    pixels, width, height = _depth_render(scene, frame, k, Path(folder))
    return write_scene_depth(folder, k, depth_from_rgba(pixels, width, height))


def render_mask_frame(scene, frame: int, k: int, folder: str | Path,
                      collection_name: str) -> Path:
    """Where Blender frame ``frame`` shows the collection's objects, as a grey
    ``{folder}/{k:05d}.png`` (white = diffused).

    The depth render with every other object a holdout: its alpha is what
    the camera sees of the collection, hidden wherever another object is in front.
    """
    collection = bpy.data.collections.get(collection_name)
    if collection is None:
        raise RuntimeError(f"the collection {collection_name!r} no longer exists")
    inside = set(collection.all_objects)
    holdouts = [(obj, "is_holdout", True) for obj in scene.objects if obj not in inside]
    pixels, width, height = _depth_render(scene, frame, k, Path(folder), holdouts)
    path = Path(folder) / f"{k:05d}.png"
    image = bpy.data.images.new(f".deforum_mask_{k}", width, height, alpha=False)
    try:
        image.colorspace_settings.is_data = True  # 0/1 stored as 0/255, no transfer curve
        image.pixels.foreach_set(mask_rgba(pixels, width, height))
        image.filepath_raw = str(path)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
    return path


def _colour_changes(scene, folder: str | Path, k: int) -> tuple[Path, list[Change]]:
    """The output file of colour frame k and what rendering it changes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = bake.render_size(scene)
    path = folder / f"{k:05d}.png"
    image = scene.render.image_settings
    return path, _frame_changes(scene, width, height, path) + \
        compat.image_format_changes(image, "PNG") + \
        [(image, "color_mode", "RGB"), (image, "color_depth", "8")]


def render_colour_frame(scene, frame: int, k: int, folder: str | Path) -> Path:
    """Blender frame ``frame`` rendered with the user's settings as ``{folder}/{k:05d}.png``."""
    path, changes = _colour_changes(scene, folder, k)
    with _temporarily(changes), _at_frame(scene, frame):
        _render(scene)
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
        self._saved = _apply(changes)
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
            _restore(self._saved)
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


def _scene_pass(scene, folder: str | Path, label: str, render_frame, setting: str,
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


def depth_pass(scene, folder: str | Path) -> ScenePass:
    """Depth maps ``{folder}/{k:05d}.npy`` for every frame of the scene range."""
    return _scene_pass(scene, folder, DEPTH_LABEL, render_depth_frame, "depth_source")


def mask_pass(scene, folder: str | Path, collection) -> ScenePass:
    """Masks ``{folder}/{k:05d}.png`` of what the camera sees of ``collection``, every frame."""
    name = collection.name

    def render_frame(target, frame: int, k: int, out: str | Path) -> Path:
        return render_mask_frame(target, frame, k, out, name)
    return _scene_pass(scene, folder, MASK_LABEL, render_frame, "stylise_mask")


def colour_pass(scene, folder: str | Path, *, setting: str = "render settings",
                frames: Sequence[int] | None = None) -> ScenePass:
    """Colour frames ``{folder}/{k:05d}.png`` for ``frames`` (default: the scene range).

    ``setting`` is what errors name (the option that asked for the frames).
    """
    return _scene_pass(scene, folder, COLOUR_LABEL, render_colour_frame, setting, frames,
                       background=BackgroundRender)
