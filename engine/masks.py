"""Init masks: white = the area diffusion may change, black = kept."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import InputError
from .paths import local_path


def adjust_mask(mask: np.ndarray, *, brightness: float = 1.0, contrast: float = 1.0,
                invert: bool = False) -> np.ndarray:
    """Brightness (scale), then contrast (about the mean), clipped; optionally inverted.

    Deforum passes these two factors the wrong way round; here each one does
    what its name says.
    """
    m = np.clip(mask.astype(np.float32) * brightness, 0.0, 1.0)
    m = np.clip((m - m.mean()) * contrast + m.mean(), 0.0, 1.0)
    return 1.0 - m if invert else m


def load_mask(settings: Mapping[str, Any]) -> np.ndarray | None:
    """The settings' mask as H×W float32 in [0, 1], or None when masks are off."""
    import cv2

    if not settings["use_mask"]:
        return None
    size = (settings["W"], settings["H"])
    if settings["use_alpha_as_mask"]:
        path, key = settings["init_image"], "init_image"
    else:
        path, key = settings["mask_file"], "mask_file"
    if not path:
        raise InputError(f"{key}: use_mask is on but no mask file is given", key=key, value=path)
    if not local_path(path, key).is_file():
        raise InputError(f"{key}: file not found: {path} (use_mask is on)", key=key, value=path)
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"{key}: {path} is not a readable image", key=key, value=path)
    if settings["use_alpha_as_mask"]:
        if image.ndim != 3 or image.shape[2] != 4:
            raise InputError(f"init_image: {path} has no alpha channel (use_alpha_as_mask)",
                             key="init_image", value=path)
        grey = image[..., 3]
    else:
        grey = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
    if grey.dtype != np.uint8:
        grey = (grey.astype(np.float32) / np.iinfo(grey.dtype).max * 255).round().astype(np.uint8)
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_LANCZOS4)
    return adjust_mask(grey.astype(np.float32) / 255.0,
                       brightness=settings["mask_brightness_adjust"],
                       contrast=settings["mask_contrast_adjust"], invert=settings["invert_mask"])


def overlay(original: np.ndarray, generated: np.ndarray, mask: np.ndarray,
            blur: float) -> np.ndarray:
    """Paste ``original`` back where the mask is black, with a soft edge of σ = ``blur``."""
    import cv2

    # The soft edge lies inside the white area, so black pixels stay exactly as they were.
    soft = np.minimum(cv2.GaussianBlur(mask, (0, 0), blur), mask) if blur > 0 else mask
    soft = soft[..., None]
    out = original.astype(np.float32) * (1 - soft) + generated.astype(np.float32) * soft
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
