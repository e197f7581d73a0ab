"""Hybrid compositing: the guide video's frame is mixed into the animation.

At each keyframe F > 0 of a 2D/3D run the picture is mixed with video frame F
(or, with ``hybrid_use_init_image``, with the init image): ``hybrid_composite``
says when — "Before Motion" (after the camera warp, before hybrid motion),
"Normal" (after both) or "After Generation" (the diffused frame, before colour
coherence); in-between frames are never composited.  Without a mask the
result is the picture blended towards the video by ``hybrid_comp_alpha_schedule``
(0: unchanged, 1: the video).  A mask (``hybrid_comp_mask_type``) decides per
pixel first: white keeps the picture, black takes the video, and the alpha
blend follows.  Masks are grey pictures: Depth (the previous frame's depth,
far = white: in 3D the depth the warp used, in 2D estimated with
``depth_model_path`` as the webui loads its depth model for it), Video Depth
(the video frame's, estimated likewise), Blend (the two pictures' greys
mixed by ``hybrid_comp_mask_blend_alpha_schedule``) and Difference (where the
two differ).  They are then inverted, equalised before, contrast-scaled,
auto-contrasted between two percentiles (a flat mask is left as it is), saved
(``hybrid_comp_save_extra_frames``) and equalised after — the webui's order and
its Pillow operations, so the pictures match.  Pillow and OpenCV are imported
when a frame is composited: the settings table reads the choices in Blender.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SettingsError
from .progress import Progress

COMPOSITES = ("None", "Normal", "Before Motion", "After Generation")
MASK_TYPES = ("None", "Depth", "Video Depth", "Blend", "Difference")
EQUALIZE = ("None", "Before", "After", "Both")
HUMAN_MASKS = ("None", "PNGs", "Video", "Both")
DEPTH_MASKS = ("Depth", "Video Depth")
EXTRA_FOLDER = "hybridframes"

# depth(image): z (larger = farther) of an RGB picture, from the run's depth model.
DepthFn = Callable[[np.ndarray], np.ndarray]


def wants_depth(settings: Mapping[str, Any]) -> bool:
    """Whether compositing needs a depth model (a Depth or Video Depth mask)."""
    return settings["hybrid_composite"] != "None" and \
        settings["hybrid_comp_mask_type"] in DEPTH_MASKS


def depth_picture(z: np.ndarray) -> np.ndarray:
    """Depth as an 8-bit grey picture spanning its own range, far = white (flat: black)."""
    z = np.asarray(z, dtype=np.float64)
    lo, hi = float(z.min()), float(z.max())
    if not hi > lo:
        return np.zeros(z.shape, np.uint8)
    return ((z - lo) / (hi - lo) * 255.0).astype(np.uint8)


def extra_path(folder: Path, timestring: str, kind: str, frame: int) -> Path:
    """``hybridframes/{timestring}_{kind}_{frame:05}.png``: beside, not among, the frames."""
    return folder / EXTRA_FOLDER / f"{timestring}_{kind}_{frame:05d}.png"


class ExtraFrames:
    """``hybrid_comp_save_extra_frames``: the in-between pictures, each written once."""

    def __init__(self, folder: Path, timestring: str) -> None:
        self.folder, self.timestring = folder, timestring

    def save(self, kind: str, frame: int, image: np.ndarray) -> None:
        from .output import write_png
        path = extra_path(self.folder, self.timestring, kind, frame)
        path.parent.mkdir(exist_ok=True)
        if not path.exists():  # a resumed run keeps what it already has
            write_png(path, image)

    def save_flow(self, frame: int, flow: np.ndarray) -> None:
        """The hybrid flow into ``frame`` in colour: hue = direction, brightness = length."""
        import cv2
        length, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
        hsv = np.zeros(flow.shape[:2] + (3,), np.uint8)
        hsv[..., 0] = (angle * 90.0 / np.pi).astype(np.uint8)
        hsv[..., 1] = 255
        hsv[..., 2] = cv2.normalize(length, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        self.save("flow", frame, cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))

    def save_consistency(self, frame: int, mask: np.ndarray) -> None:
        """The flow's consistency mask, −0.75 … 1 as black … white."""
        grey = (np.clip(mask, -0.75, 1.0) + 0.75) / 1.75 * 255.0
        self.save("flow_mask", frame, np.rint(grey).astype(np.uint8))


def _auto_contrast(mask: Any, low: int, high: int) -> Any:
    """The mask stretched so its ``low``-th percentile is black and ``high``-th white."""
    from PIL import Image
    values = np.asarray(mask)
    lo, hi = np.percentile(values, low), np.percentile(values, high)
    if not hi > lo:
        return mask
    stretched = np.clip(255.0 * (values - lo) / (hi - lo), 0, 255)
    return Image.fromarray(stretched).convert("L")


class HybridComposite:
    """``composite(image, frame, previous, z)``: ``image`` mixed with video frame ``frame``.

    ``previous`` is the frame before (its depth is the Depth mask), ``z`` that depth
    when the loop already has it."""

    def __init__(self, settings: Mapping[str, Any], video: Callable[[int], np.ndarray | None],
                 depth: DepthFn | None, extras: ExtraFrames | None) -> None:
        self.when = settings["hybrid_composite"]
        self.mask_type = settings["hybrid_comp_mask_type"]
        self.inverse = settings["hybrid_comp_mask_inverse"]
        self.equalize = settings["hybrid_comp_mask_equalize"]
        self.auto = settings["hybrid_comp_mask_auto_contrast"]
        self.video, self.depth, self.extras = video, depth, extras
        frames = settings["max_frames"]
        self.values = {name: settings.schedule(f"hybrid_comp_{name}_schedule").values(frames)
                       for name in ("alpha", "mask_blend_alpha", "mask_contrast",
                                    "mask_auto_contrast_cutoff_low",
                                    "mask_auto_contrast_cutoff_high")}

    def __call__(self, image: np.ndarray, frame: int, previous: np.ndarray | None = None,
                 z: np.ndarray | None = None) -> np.ndarray:
        from PIL import Image
        video = self.video(frame)
        if video is None:
            return image
        picture, clip = Image.fromarray(image), Image.fromarray(video)
        mask = self._mask(picture, clip, frame, previous if previous is not None else image, z)
        mixed = clip if mask is None else Image.composite(picture, clip, mask)
        if mask is not None:
            self._save("comp", frame, mixed)
        result = Image.blend(picture, mixed, float(self.values["alpha"][frame]))
        self._save("prev", frame, result)
        return np.asarray(result)

    def _raw_mask(self, picture: Any, clip: Any, frame: int, previous: np.ndarray,
                  z: np.ndarray | None) -> Any:
        from PIL import Image, ImageChops
        kind = self.mask_type
        if kind == "Depth":
            depth = depth_picture(z if z is not None else self.depth(previous))
        elif kind == "Video Depth":
            depth = depth_picture(self.depth(np.asarray(clip)))
            self._save("vid_depth", frame, depth)
        elif kind == "Blend":
            return Image.blend(picture.convert("L"), clip.convert("L"),
                               float(self.values["mask_blend_alpha"][frame]))
        else:
            return ImageChops.difference(picture.convert("L"), clip.convert("L"))
        return Image.fromarray(depth)

    def _mask(self, picture: Any, clip: Any, frame: int, previous: np.ndarray,
              z: np.ndarray | None) -> Any | None:
        """The per-pixel choice between picture (white) and video (black), or None."""
        from PIL import ImageEnhance, ImageOps
        if self.mask_type == "None":
            return None
        mask = self._raw_mask(picture, clip, frame, previous, z)
        if self.inverse:
            mask = ImageOps.invert(mask)
        if self.equalize in ("Before", "Both"):
            mask = ImageOps.equalize(mask)
        mask = ImageEnhance.Contrast(mask).enhance(float(self.values["mask_contrast"][frame]))
        if self.auto:
            mask = _auto_contrast(mask, int(self.values["mask_auto_contrast_cutoff_low"][frame]),
                                  int(self.values["mask_auto_contrast_cutoff_high"][frame]))
        self._save("mask", frame, mask)
        if self.equalize in ("After", "Both"):
            mask = ImageOps.equalize(mask)
        return mask

    def _save(self, kind: str, frame: int, picture: Any) -> None:
        if self.extras is not None:
            self.extras.save(kind, frame, np.asarray(picture))


def check_composite(settings: Mapping[str, Any], progress: Progress) -> None:
    """Refuse what compositing cannot do before any frame is written; warn about
    human masks, which need a matting model this engine has no local copy of."""
    if settings["hybrid_generate_human_masks"] != "None":
        progress.warning("hybrid_generate_human_masks: human masks need the Robust Video "
                         "Matting model, which this engine cannot fetch; no masks are made "
                         "(the frames are the same: the webui only writes them for use as a "
                         "mask video)", key="hybrid_generate_human_masks")
    kind = settings["hybrid_comp_mask_type"]
    scene_depth = settings["animation_mode"] == "3D" and settings["use_depth_warping"] \
        and settings["depth_source"] == "scene"  # the warp's true depth serves a Depth mask
    if wants_depth(settings) and not settings["depth_model_path"] and \
            not (kind == "Depth" and scene_depth):
        raise SettingsError(f"hybrid_comp_mask_type: {kind!r} needs a depth model; set "
                            "depth_model_path to a local DPT or Depth Anything folder",
                            key="hybrid_comp_mask_type", value=kind)


def composite_set_up(settings: Mapping[str, Any], frames: list[Path], folder: Path,
                     timestring: str, depth: DepthFn | None) -> HybridComposite | None:
    """The run's compositing (None when off): the video's frames, or the init image with
    ``hybrid_use_init_image``, at the output size; frames past the clip are left alone."""
    if settings["hybrid_composite"] == "None":
        return None
    from .output import read_image
    from .paths import local_path
    size = (settings["W"], settings["H"])
    if settings["hybrid_use_init_image"]:
        if not settings["init_image"]:
            raise SettingsError("init_image: hybrid_use_init_image composites the init image, "
                                "and none is set", key="init_image", value="")
        still = read_image(local_path(settings["init_image"], "init_image"), size, "init_image")

        def video(frame: int) -> np.ndarray | None:
            return still
    else:
        def video(frame: int) -> np.ndarray | None:
            if frame >= len(frames):
                return None
            return read_image(frames[frame], size, "video_init_path")
    extras = ExtraFrames(folder, timestring) if settings["hybrid_comp_save_extra_frames"] \
        else None
    return HybridComposite(settings, video, depth, extras)
