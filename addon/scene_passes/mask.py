"""Scene masks: what the camera sees of one collection, a grey ``{k:05d}.png`` per frame.

Stylising only some objects: the depth render with every object outside the
collection a holdout, so the alpha is the collection's coverage, hidden wherever
another object is in front. White = diffused.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from .depth import depth_render
from .driver import ScenePass
from .pixels import mask_rgba
from .render import scene_pass

LABEL = "scene masks"


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
    pixels, width, height = depth_render(scene, frame, k, Path(folder), holdouts)
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


def mask_pass(scene, folder: str | Path, collection,
              setting: str = "stylise_mask") -> ScenePass:
    """Masks ``{folder}/{k:05d}.png`` of what the camera sees of ``collection``, every frame
    (``setting``: named in its errors)."""
    name = collection.name

    def render_frame(target, frame: int, k: int, out: str | Path) -> Path:
        return render_mask_frame(target, frame, k, out, name)
    return scene_pass(scene, folder, LABEL, render_frame, setting)
