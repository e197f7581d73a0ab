"""Guided images (Deforum's "looper"): keyframes pulled toward images keyed by frame.

``init_images`` maps frames to local images (a JSON object, or that object as
a JSON string as the webui stores it).  A frame's guide is the image of the
latest key at or before it (the first image before the first key).  Frame 0
is diffused from the first guide; every later diffused frame starts from its
prepared init blended toward its guide by a blend factor, is diffused with
``image_strength_schedule`` as its strength, and its colours are then
corrected toward the blend of that init and the guide by
``color_correction_factor`` (histogram match in LAB, the output's own
luminosity kept).  The blend factor is ``blendFactorMax − blendFactorSlope ·
cos((f mod T)/(T/2))`` (T = ``tweening_frames_schedule``) while ``f mod S ≤
T``, S being the length of the guide section holding f (25 outside any), and
0.07 otherwise; with the cosine's argument running 0…2 it rises from max −
slope to about max + 0.42·slope, restarting every T frames.  Cadence's
in-between frames are not guided: they blend the guided keyframes around them.
With guides on, seeds follow ``seed_schedule`` (seed_behavior "schedule").
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .color import match_colors
from .errors import SettingsError, shown
from .output import read_image
from .paths import local_path
from .schedules import PromptSchedule

KEY = "init_images"
OUTSIDE_SECTION = 25  # section length for frames after the last guide key
RESTING_BLEND = 0.07  # blend factor outside the tweening window
_LUMA = np.array([0.3, 0.59, 0.11], dtype=np.float32)  # W3C luminosity weights

Generate = Callable[..., np.ndarray]


def _bad(message: str, value: Any) -> SettingsError:
    return SettingsError(f"{KEY}: {message}", key=KEY, value=value)


def _mapping(value: Any) -> Mapping[str, Any]:
    """The frame → image object, from an object or its JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise _bad(f"{shown(value)} is not JSON ({exc.msg}); expected an object of "
                       'frame → image path like {"0": "a.png", "30": "b.png"}', value) from None
    if not isinstance(value, Mapping):
        raise _bad(f"{shown(value)} is not an object of frame → image path", value)
    for frame, path in value.items():
        if not isinstance(path, str) or not path.strip():
            raise _bad(f"the image for frame {shown(frame)} must be a file path, got "
                       f"{shown(path)}", path)
    return value


@dataclass(frozen=True)
class Guides:
    """The guide images of a run and the schedules that say how hard they pull."""

    keys: list[int]            # key frames, ascending
    images: list[np.ndarray]   # RGB uint8, W×H, one per key
    strength: np.ndarray       # per frame: diffusion strength of a guided frame
    blend_max: np.ndarray
    blend_slope: np.ndarray
    tweening: np.ndarray
    correction: np.ndarray

    def index(self, frame: int) -> int:
        """Which guide ``frame`` is pulled toward: the latest key ≤ frame, else the first."""
        return max(0, bisect_right(self.keys, frame) - 1)

    def blend(self, frame: int) -> float:
        """How far the init of ``frame`` is blended toward its guide (see the module)."""
        span = OUTSIDE_SECTION
        for start, end in zip(self.keys, self.keys[1:]):
            if start <= frame <= end:
                span = end - start
        period = float(self.tweening[frame])
        if frame % span <= period:
            return float(self.blend_max[frame]
                         - self.blend_slope[frame] * math.cos((frame % period) / (period / 2)))
        return RESTING_BLEND


def guide_paths(settings: Any) -> list[tuple[int, str]]:
    """(frame, image path) of each key of ``init_images``, ascending (none when empty);
    keys take the prompts' rules (numbers or expressions of max_f)."""
    given = _mapping(settings[KEY])
    if not given:
        return []
    # Each key carries its position so the image is looked up exactly.
    order = PromptSchedule({k: str(i) for i, k in enumerate(given)}, key=KEY,
                           max_frames=settings["max_frames"], seed=max(settings["seed"], 0))
    paths = list(given.values())
    return [(k, paths[int(order.at(k)[0])]) for k in order.keys]


def load_guides(settings: Any) -> Guides | None:
    """The run's guides when ``use_looper`` is on (None when off); every error names
    the setting.  Called before the run writes anything, and again by the loop."""
    if not settings["use_looper"]:
        return None
    keyed = guide_paths(settings)
    if not keyed:
        raise _bad("use_looper needs at least one frame → image path", settings[KEY])
    frames = settings["max_frames"]
    keys = [k for k, _ in keyed]
    size = (settings["W"], settings["H"])
    images = [read_image(local_path(path, KEY), size, KEY) for _, path in keyed]
    tweening = settings.schedule("tweening_frames_schedule").values(frames)
    if not (tweening > 0).all():
        frame = int(np.argmin(tweening > 0))
        raise SettingsError(f"tweening_frames_schedule: {tweening[frame]:g} at frame {frame}; "
                            "guided images need more than 0 frames",
                            key="tweening_frames_schedule", value=float(tweening[frame]))
    return Guides(keys, images, settings.schedule("image_strength_schedule").values(frames),
                  settings.schedule("blendFactorMax").values(frames),
                  settings.schedule("blendFactorSlope").values(frames), tweening,
                  settings.schedule("color_correction_factor").values(frames))


def diffusion_settings(settings: Any) -> Any:
    """``settings`` as diffusion sees them under guided images: strength from
    ``image_strength_schedule`` (frame 0's too) and seeds from ``seed_schedule``."""
    if not settings["use_looper"]:
        return settings
    first = float(settings.schedule("image_strength_schedule").values(1)[0])
    return settings.replace(strength_schedule=settings["image_strength_schedule"],
                            strength=min(max(first, 0.0), 1.0), seed_behavior="schedule")


def _mix(a: np.ndarray, b: np.ndarray, factor: float) -> np.ndarray:
    """``a`` blended toward ``b`` by ``factor`` (beyond 0…1 it extrapolates, then clips)."""
    out = a.astype(np.float32) + (b.astype(np.float32) - a) * factor
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _with_luminosity(colour: np.ndarray, light: np.ndarray) -> np.ndarray:
    """``colour``'s hue and saturation at ``light``'s luminosity (the W3C blend mode)."""
    c = colour.astype(np.float32) / 255
    target = (light.astype(np.float32) / 255) @ _LUMA
    c += (target - c @ _LUMA)[..., None]
    lum = (c @ _LUMA)[..., None]
    low, high = c.min(axis=-1, keepdims=True), c.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(low < 0, lum + (c - lum) * lum / (lum - low), c)
        c = np.where(high > 1, lum + (c - lum) * (1 - lum) / (high - lum), c)
    return np.clip(np.rint(np.nan_to_num(c) * 255), 0, 255).astype(np.uint8)


def color_correct(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``image``'s colours histogram-matched to ``reference`` in LAB, its own luminosity kept."""
    return _with_luminosity(match_colors(image, reference, "LAB"), image)


def guided(generate: Generate, settings: Any) -> Generate:
    """``generate`` with each diffused frame pulled toward its guide image; ``generate``
    itself when ``use_looper`` is off."""
    guides = load_guides(settings)
    if guides is None:
        return generate

    def pulled(init: np.ndarray | None, frame: int,
               uncovered: np.ndarray | None = None) -> np.ndarray:
        if frame == 0:
            return generate(guides.images[0], 0)
        guide = guides.images[guides.index(frame)]
        blended = _mix(init, guide, guides.blend(frame))
        out = generate(blended, frame, uncovered) if uncovered is not None \
            else generate(blended, frame)
        return color_correct(out, _mix(blended, guide, float(guides.correction[frame])))
    return pulled
