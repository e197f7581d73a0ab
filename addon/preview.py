"""Live preview: the newest frame of a render in the Image Editor.

One image datablock, "Deforum Preview", points at the newest frame file; every
open Image Editor that shows nothing (or already this image) and is not pinned
shows it. A user's other images are never replaced. Called from the modal
tick with already-received frames: it only repoints an image, never waits.
"""

from __future__ import annotations

import bpy

PREVIEW_NAME = "Deforum Preview"


def preview_image(path: str):
    """The "Deforum Preview" image, pointed at ``path`` (setting filepath reloads it)."""
    image = bpy.data.images.get(PREVIEW_NAME)
    if image is None:
        image = bpy.data.images.load(path, check_existing=False)
        image.name = PREVIEW_NAME
    elif image.filepath != path:
        image.filepath = path
    else:
        image.reload()
    return image


def show_frame(path: str, window_manager) -> None:
    """Point the preview image at ``path`` and show it in the free Image Editors."""
    image = preview_image(path)
    for window in getattr(window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type != "IMAGE_EDITOR":
                continue
            space = area.spaces.active
            if space.use_image_pin or space.image not in (None, image):
                continue
            if space.image is None:
                space.image = image
            area.tag_redraw()
