"""Control images of the ControlNet units: where each frame's picture comes from, how it
is fitted to W×H and which preprocessor turns it into what the ControlNet reads.

A unit's ``cn_N_vid_path`` is one image (the same control for every frame), a video
(extracted once into the run's folder, frame k = output frame k) or a folder of images
taken in natural order (``00000.png``, ``00001.png`` …, one per frame, as Blender writes
scene passes).  Preprocessors here are the ones that need no network weights, done with
OpenCV as the webui's ControlNet extension does them, plus depth from the run's own depth
model; the neural ones (pose, line-art, segmentation …) are refused with an error asking
for ready-made control frames.  cv2 is imported inside functions: the settings table
imports this module's names in Blender's Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, SettingsError, shown

JUST_RESIZE, INNER_FIT, OUTER_FIT = ("Just Resize", "Inner Fit (Scale to Fit)",
                                     "Outer Fit (Shrink to Fit)")
RESIZE_MODES = (OUTER_FIT, INNER_FIT, JUST_RESIZE)
# Older webui exports and the ControlNet extension's own names of the same three modes.
RESIZE_ALIASES = {"Scale to Fit (Inner Fit)": INNER_FIT, "Envelope (Outer Fit)": OUTER_FIT,
                  "Crop and Resize": INNER_FIT, "Resize and Fill": OUTER_FIT}
# Preprocessors run here without weights; "depth…" modules use depth_model_path.
PREPROCESSORS = ("none", "invert", "canny", "binary", "scribble_xdog", "color",
                 "t2ia_color_grid", "blur_gaussian")
DEPTH_PREFIX = "depth"
BINARY_OUTPUTS = ("canny", "binary", "scribble_xdog")  # stay black/white through resizing
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def check_module(module: str, key: str, depth_model_path: str) -> str:
    """The preprocessor name (lower case) when this engine can run it, else a SettingsError."""
    name = module.strip().lower()
    if name in PREPROCESSORS:
        return name
    if name.startswith(DEPTH_PREFIX):
        if not depth_model_path:
            raise SettingsError(f"{key}: {shown(module)} estimates depth with depth_model_path, "
                                "which is not set; set it to a local DPT or Depth Anything folder "
                                "or give ready-made depth frames with the module 'none'",
                                key=key, value=module)
        return name
    raise SettingsError(f"{key}: the preprocessor {shown(module)} needs network weights this "
                        "engine does not run; give ready-made control frames (cn_N_vid_path) and "
                        f"set the module to 'none' (available: {', '.join(PREPROCESSORS)}, and "
                        "depth… with depth_model_path)", key=key, value=module)


def read_rgb(path: Path, key: str) -> np.ndarray:
    """A uint8 H×W×3 RGB image (an alpha channel is dropped, grey is spread to RGB)."""
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InputError(f"{key}: cannot read the image {path}", key=key, value=str(path))
    if data.dtype != np.uint8:  # 16-bit passes: keep their top 8 bits
        data = (data.astype(np.float64) / np.iinfo(data.dtype).max * 255).round().astype(np.uint8)
    if data.ndim == 2:
        data = np.repeat(data[:, :, None], 3, axis=2)
    return np.ascontiguousarray(data[:, :, 2::-1] if data.shape[2] >= 3 else
                                np.repeat(data[:, :, :1], 3, axis=2))


class ControlFrames:
    """The pictures of one ``cn_N_vid_path`` or ``cn_N_mask_vid_path``, by frame."""

    def __init__(self, path: str, key: str, folder: Path, *, overwrite: bool, nth: int = 1,
                 **span: Any) -> None:
        from .paths import local_path
        from .video import extract_video

        source = local_path(path, key).expanduser()
        if not source.exists():
            raise InputError(f"{key}: not found: {shown(path)}", key=key, value=path)
        self.key = key
        if source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
            self.files, self.static = [source], True
            return
        _, self.files, _ = extract_video(str(source), folder, nth, overwrite=overwrite, key=key,
                                         **span)
        self.static = False

    def path(self, frame: int) -> Path | None:
        """The file of ``frame``; None past the end of a video or folder."""
        if self.static:
            return self.files[0]
        return self.files[frame] if 0 <= frame < len(self.files) else None


def fit(image: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    """``image`` at width×height: stretched (Just Resize), scaled to cover and cropped at
    the centre (Inner Fit), or scaled to fit inside with the margins in the median colour
    of the picture's border (Outer Fit)."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if mode == JUST_RESIZE:
        return _resize(image, width, height)
    scale = max(width / w, height / h) if mode == INNER_FIT else min(width / w, height / h)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    scaled = _resize(image, sw, sh)
    if mode == INNER_FIT:
        x, y = (sw - width) // 2, (sh - height) // 2
        return np.ascontiguousarray(scaled[y:y + height, x:x + width])
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    out = np.empty((height, width, image.shape[2]), np.uint8)
    out[:] = np.median(border, axis=0).astype(np.uint8)
    x, y = (width - sw) // 2, (height - sh) // 2
    out[y:y + sh, x:x + sw] = scaled
    return out


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def pixel_perfect_resolution(shape: tuple[int, ...], width: int, height: int, mode: str) -> int:
    """The preprocessor resolution at which one of its pixels lands on one output pixel:
    the picture's shorter side times the scale the resize mode gives it."""
    k_h, k_w = height / shape[0], width / shape[1]
    k = min(k_h, k_w) if mode == OUTER_FIT else max(k_h, k_w)
    return int(round(k * min(shape[:2])))


def preprocess(image: np.ndarray, module: str, resolution: int, a: float, b: float,
               depth: Any = None) -> np.ndarray:
    """Run the weightless preprocessor ``module`` on a uint8 RGB picture whose shorter
    side is first brought to ``resolution``; returns uint8 RGB."""
    import cv2

    if module == "none":
        return image
    if module.startswith(DEPTH_PREFIX):
        z = depth.predict(image)  # [1, 2], larger = farther; ControlNet wants near = white
        return np.repeat(np.rint((2.0 - z) * 255.0).clip(0, 255).astype(np.uint8)[:, :, None],
                         3, axis=2)
    h, w = image.shape[:2]
    k = resolution / min(h, w)
    work = _resize(image, max(1, round(w * k)), max(1, round(h * k)))
    if module == "invert":
        return 255 - work
    if module in ("color", "t2ia_color_grid"):
        small = cv2.resize(work, (max(1, work.shape[1] // 64), max(1, work.shape[0] // 64)),
                           interpolation=cv2.INTER_CUBIC)
        return cv2.resize(small, (work.shape[1], work.shape[0]), interpolation=cv2.INTER_NEAREST)
    if module == "blur_gaussian":
        return cv2.GaussianBlur(work, (0, 0), max(float(a), 0.01))
    return np.repeat(_edges(work, module, a, b)[:, :, None], 3, axis=2)


def _edges(work: np.ndarray, module: str, a: float, b: float) -> np.ndarray:
    """One-channel black/white maps: Canny edges, a binarised (inverted) picture, or the
    difference-of-Gaussians scribble."""
    import cv2

    if module == "canny":
        return cv2.Canny(work, float(a), float(b))
    if module == "binary":
        grey = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
        otsu = cv2.THRESH_OTSU if a <= 0 or a >= 255 else 0
        return cv2.threshold(grey, float(a), 255, cv2.THRESH_BINARY_INV | otsu)[1]
    fine = cv2.GaussianBlur(work.astype(np.float32), (0, 0), 0.5)
    coarse = cv2.GaussianBlur(work.astype(np.float32), (0, 0), 5.0)
    dog = (255 - np.min(coarse - fine, axis=2)).clip(0, 255)
    return np.where(2 * (255 - dog) > a, 255, 0).astype(np.uint8)


def control_image(image: np.ndarray, module: str, resolution: int, a: float, b: float,
                  size: tuple[int, int], mode: str, depth: Any = None) -> np.ndarray:
    """A unit's control picture at ``size`` (W, H): preprocessed, then fitted per ``mode``.
    Black/white maps are made black/white again after resizing (Otsu's threshold, as the
    webui's ControlNet does), so thin lines shrunk below one pixel are kept, not greyed."""
    import cv2

    width, height = size
    if resolution <= 0:
        resolution = pixel_perfect_resolution(image.shape, width, height, mode)
    out = fit(preprocess(image, module, resolution, a, b, depth), width, height, mode)
    if module in BINARY_OUTPUTS:
        grey = cv2.threshold(np.ascontiguousarray(out[:, :, 0]), 0, 255,
                             cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]
        out = np.repeat(grey[:, :, None], 3, axis=2)
    return out
