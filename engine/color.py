"""Colour coherence: pull a frame's palette towards a reference by histogram matching.

Follows Deforum's ``maintain_colors`` (OpenCV 8-bit conversions, then
``skimage.exposure.match_histograms`` per channel) in true RGB channel order
and with the result rounded instead of truncated.  ``Coherence`` holds a
run's reference and Deforum's rules for when it is taken and what is matched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

_PREFIX = "match frame 0 "
_SPACES = ("lab", "hsv", "rgb")
# References from outside the animation; Deforum matches them in LAB.
_OUTSIDE = {"image": "lab", "video input": "lab"}


def _name(mode: str) -> str:
    """``"Match Frame 0 LAB"`` → ``"lab"``, ``"Video Input"`` → ``"video input"``."""
    name = mode.strip().lower() if isinstance(mode, str) else ""
    return name[len(_PREFIX):].strip() if name.startswith(_PREFIX) else name


def _space(mode: str) -> str | None:
    """``"LAB"``/``"Match Frame 0 LAB"`` → ``"lab"``; ``"None"`` → None (any case)."""
    name = _name(mode)
    if name == "none":
        return None
    if name not in _SPACES and name not in _OUTSIDE:
        raise ValueError(f"unknown colour coherence mode {mode!r}: expected None, LAB, HSV, "
                         "RGB, Image, Video Input or 'Match Frame 0 LAB|HSV|RGB'")
    return _OUTSIDE.get(name, name)


_EXACT_COUNTS = 2 ** 24  # OpenCV counts in float32: whole numbers up to here


def _curves(image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per channel of a uint8 H×W×3 picture: the byte values present and their cumulative
    quantiles.  OpenCV counts the three channels in place, where NumPy would first copy
    each strided channel out; past 2²⁴ pixels its float counts could be inexact.  (OpenCV
    4 gives a 256×1 histogram, OpenCV 5 a flat one: both are read flat.)"""
    import cv2

    pixels = image.shape[0] * image.shape[1]
    if pixels > _EXACT_COUNTS:
        counts = [np.bincount(image[..., c].ravel(), minlength=256) for c in range(3)]
    else:
        image = np.ascontiguousarray(image)
        counts = [cv2.calcHist([image], [c], None, [256], [0, 256]).ravel().astype(np.int64)
                  for c in range(3)]
    curves = []
    for count in counts:
        present = np.flatnonzero(count)
        curves.append((present, np.cumsum(count)[present] / pixels))
    return curves


def _matching_table(source: tuple[np.ndarray, np.ndarray],
                    reference: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Byte → byte table that histogram-matches one uint8 channel (its curve) to a reference
    curve.

    Same numbers as skimage's unique-based algorithm: each source value goes to
    its cumulative quantile, looked up in the reference's quantile → value curve
    by linear interpolation, then rounded.  256-bin counts replace
    ``np.unique`` because the values are bytes; the cumulative sums over the
    values present are identical.
    """
    src_present, src_quantiles = source
    ref_present, ref_quantiles = reference
    table = np.zeros(256, dtype=np.uint8)
    table[src_present] = np.rint(np.interp(src_quantiles, ref_quantiles, ref_present))
    return table


class _ReferenceCurves:
    """The last reference's converted channels' curves: a run matches every keyframe
    twice to the same reference, which need not be converted and counted each time.
    The array is held, so its identity stays its own, and a checksum catches a
    reference changed in place."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._held: np.ndarray | None = None
        self._curves: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, reference: np.ndarray, space: str, forward: int | None
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
        import zlib

        import cv2
        key = (id(reference), space, zlib.crc32(np.ascontiguousarray(reference).data))
        if key != self._key or self._held is not reference:
            target = reference if forward is None else cv2.cvtColor(reference, forward)
            self._curves = _curves(target)
            self._key, self._held = key, reference
        return self._curves


_REFERENCES = _ReferenceCurves()


def match_colors(image: np.ndarray, reference: np.ndarray, mode: str) -> np.ndarray:
    """``image`` (uint8 RGB) with each channel's histogram matched to ``reference``'s.

    ``mode`` picks the colour space (LAB, HSV or RGB, optionally spelt
    "Match Frame 0 …", any case; Image and Video Input match in LAB); "None"
    returns ``image`` itself.
    """
    space = _space(mode)
    if space is None:
        return image
    for name, array in (("image", image), ("reference", reference)):
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"{name} must be a uint8 H×W×3 RGB array, got "
                             f"{array.dtype} {array.shape}")
    import cv2

    forward, back = {"lab": (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB),
                     "hsv": (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB),
                     "rgb": (None, None)}[space]
    source = image if forward is None else cv2.cvtColor(image, forward)
    curves = _REFERENCES(reference, space, forward)
    tables = [_matching_table(own, theirs) for own, theirs in zip(_curves(source), curves)]
    matched = cv2.LUT(source, np.stack(tables, axis=-1)[:, None, :])
    return matched if back is None else cv2.cvtColor(matched, back)


def grayscale(image: np.ndarray) -> np.ndarray:
    """``image`` (uint8 RGB) as grey luma (0.299 R + 0.587 G + 0.114 B) in all three channels."""
    import cv2

    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


class Coherence:
    """A run's colour reference and Deforum's rules for it.

    The warped init of every keyframe after the first is matched to the
    reference; the first such init becomes the reference when there is none
    yet.  Without ``legacy_colormatch`` the generated keyframes are matched too,
    and frame 0 generated without an init image is the reference.  With it, a
    keyframe diffused at strength 0 (a fresh picture) becomes the reference.
    Image and Video Input references come from outside (``set_reference``),
    are matched to frame 0 as well, and are never replaced by frames.
    ``color_force_grayscale`` greys the init and the generated frame.
    """

    def __init__(self, settings: Mapping[str, Any], reference: np.ndarray | None = None) -> None:
        self.mode = settings["color_coherence"]
        self.active = _space(self.mode) is not None
        self.outside = _name(self.mode) in _OUTSIDE
        self.legacy = settings["legacy_colormatch"]
        self.grey = settings["color_force_grayscale"]
        self.reference = reference
        self._match, self._grey, self._upload = match_colors, grayscale, lambda image: image

    def use(self, frames: Any) -> None:
        """Match and grey with ``frames``' operations (the loop's ``engine.frames`` backend);
        the reference moves where its pictures are."""
        self._match, self._grey, self._upload = frames.match, frames.grey, frames.upload
        self.reference = self._upload(self.reference)

    def set_reference(self, image: np.ndarray) -> None:
        """Match to ``image`` from now on (the colour image, the current video frame)."""
        self.reference = self._upload(image)

    def prepare(self, warped: np.ndarray) -> np.ndarray:
        """The warped init of a keyframe after the first, matched (and greyed)."""
        if self.active:
            if self.reference is None:
                self.reference = warped
            else:
                warped = self._match(warped, self.reference, self.mode)
        return self._grey(warped) if self.grey else warped

    def finish(self, image: np.ndarray, frame: int, strength: float,
               had_init: bool) -> np.ndarray:
        """A generated keyframe, matched and greyed by the rules; may become the reference."""
        if self.active and self.reference is not None and (
                not self.legacy or frame == 0 and self.outside):
            image = self._match(image, self.reference, self.mode)
        if self.grey:
            image = self._grey(image)
        fresh = strength == 0 if self.legacy else not had_init
        if self.active and fresh and not self.outside:
            self.reference = image
        return image
