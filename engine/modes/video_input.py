"""Video Input: every frame of a clip (or image folder) goes through img2img.

Without a model (preview) the extracted frames themselves are the output.
``color_coherence`` Video Input matches each frame to the clip's frame
(refreshed every ``color_coherence_video_every_N_frames``), Image to a picture.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..blank import guard_blank
from ..color import Coherence
from ..masks import adjust_mask
from ..output import read_image
from ..progress import Progress
from ..seeds import seed_sequence
from ..settings import Settings
from .common import Mode, colour_reference, render_sequence


class VideoInput(Mode):
    """``animation_mode`` Video Input; ``max_frames`` follows the clip."""

    independent_frames = True

    def prepare(self, settings: Settings) -> Settings:
        if self.job.frames is not None and self.job.frames[0] > 0:
            # A later frame range reuses what the range with frame 0 extracted: ranges
            # running at once must not re-extract the folder under each other.
            settings = settings.replace(overwrite_extracted_frames=False)
        settings, self.frames, self.masks = _extract(settings, self.job.folder,
                                                     self.job.progress)
        return settings

    def start(self, settings: Settings, diffusion: Any | None, mask: np.ndarray | None) -> int:
        self.count = settings["max_frames"]
        colors = Coherence(settings, colour_reference(settings, self.job.progress, video=True))
        self.make = video_input_generate(settings, self.frames, self.masks,
                                         None if diffusion is None
                                         else guard_blank(diffusion, settings), colors)
        self.used = None if diffusion is None else diffusion.used_for
        return self.count

    def render(self) -> int:
        return render_sequence(self.count, self.make, self.job, self.used)


def _extract(settings: Settings, folder: Path,
             progress: Progress) -> tuple[Settings, list[Path], list[Path] | None]:
    """Extract the clip (and mask clip) into the batch folder; max_frames follows the clip."""
    from ..video import extract_video

    method = settings["video_decoder"]
    nth = settings["extract_nth_frame"]
    overwrite = settings["overwrite_extracted_frames"]
    span = {"first": settings["extract_from_frame"], "last": settings["extract_to_frame"]}
    _, frames, note = extract_video(settings["video_init_path"], folder / "inputframes", nth,
                                    overwrite=overwrite, key="video_init_path", method=method,
                                    **span)
    _report(progress, note, "video_init_path")
    masks = None
    if settings["use_mask_video"]:
        _, masks, note = extract_video(settings["video_mask_path"], folder / "maskframes", nth,
                                       overwrite=overwrite, key="video_mask_path", method=method,
                                       **span)
        _report(progress, note, "video_mask_path")
        if len(masks) != len(frames):
            progress.warning(f"video_mask_path: the mask video gives {len(masks)} frames and "
                             f"the video {len(frames)}; masks apply to the first "
                             f"{min(len(masks), len(frames))} frames", key="video_mask_path")
    changes: dict[str, Any] = {"max_frames": len(frames)}
    if settings["max_frames"] != len(frames):
        progress.info(f"max_frames: {len(frames)} (every {nth}. frame of the video)")
    if settings["diffusion_cadence"] != 1:
        progress.warning("diffusion_cadence: Video Input diffuses every frame; using 1",
                         key="diffusion_cadence")
        changes["diffusion_cadence"] = 1
    return settings.replace(**changes), frames, masks


def _report(progress: Progress, note: str | None, key: str) -> None:
    """Reusing earlier frames is news; any other extraction note is a warning."""
    if note and " reusing " in note:
        progress.info(note)
    elif note:
        progress.warning(note, key=key)


def video_input_generate(settings: Settings, frames: list[Path], masks: list[Path] | None,
                         diffusion: Any | None,
                         colors: Coherence | None = None) -> Callable[[int], np.ndarray]:
    """``make(i)``: img2img of video frame i with strength_schedule[i] and mask i.

    Without a model (preview) the extracted frame itself is the output.  The
    result goes through ``colors`` (frames in order: the reference carries).
    """
    size = (settings["W"], settings["H"])
    count = len(frames)
    strength = settings.schedule("strength_schedule").values(count)
    seeds = seed_sequence(settings["seed"], settings["seed_behavior"], count,
                          iter_n=settings["seed_iter_N"],
                          schedule=settings.schedule("seed_schedule").values(count)
                          if settings["seed_behavior"] == "schedule" else None,
                          frames=list(range(count)))
    prompts = settings.prompts()
    multiplier = settings.schedule("noise_multiplier_schedule").values(count) \
        if settings["enable_noise_multiplier_scheduling"] else [1.0] * count
    colors = colors or Coherence(settings)
    every = settings["color_coherence_video_every_N_frames"]

    def make(index: int) -> np.ndarray:
        init = read_image(frames[index], size, "video_init_path")
        if settings["color_coherence"] == "Video Input" and index % every == 0:
            colors.set_reference(init)
        elif settings["color_coherence"] == "Video Input" and colors.reference is None:
            # a frame range starting mid-way: the clip frame its block refreshed to
            colors.set_reference(read_image(frames[index - index % every], size,
                                            "video_init_path"))
        if diffusion is None:
            return colors.finish(init, index, strength[index], had_init=True)
        mask = None
        if masks is not None and index < len(masks):
            mask = _mask_frame(masks[index], size, settings)
        positive, negative = prompts.at(index)
        image = diffusion(init, strength=strength[index], seed=seeds[index], noise=0.0,
                          prompt=positive, negative=negative, mask=mask, frame=index,
                          noise_multiplier=multiplier[index])
        return colors.finish(image, index, strength[index], had_init=True)
    return make


def _mask_frame(path: Path, size: tuple[int, int], settings: Settings) -> np.ndarray:
    """One extracted mask frame as H×W float in [0, 1], adjusted like the init mask."""
    import cv2

    grey = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), size,
                      interpolation=cv2.INTER_LANCZOS4)
    return adjust_mask(grey.astype(np.float32) / 255.0,
                       brightness=settings["mask_brightness_adjust"],
                       contrast=settings["mask_contrast_adjust"],
                       invert=settings["invert_mask"])
